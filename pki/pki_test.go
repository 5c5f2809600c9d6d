package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

func TestEnsureCACreatesThenLoads(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	ca, err := EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.Cert.IsCA || ca.Cert.PublicKeyAlgorithm != x509.ECDSA {
		t.Fatalf("CA cert: IsCA=%v alg=%v", ca.Cert.IsCA, ca.Cert.PublicKeyAlgorithm)
	}
	if pub, ok := ca.Cert.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Fatalf("CA key is not P-256: %T", ca.Cert.PublicKey)
	}
	fi, err := os.Stat(filepath.Join(dir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("ca.key mode = %04o, want 0600", fi.Mode().Perm())
	}
	again, err := EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again.Cert.SerialNumber.Cmp(ca.Cert.SerialNumber) != 0 {
		t.Fatal("second EnsureCA created a new CA instead of loading the stored one")
	}
	if string(again.CertPEM()) != string(ca.CertPEM()) {
		t.Fatal("CertPEM differs after reload")
	}
}

func TestEnsureCARefusesHalfACA(t *testing.T) {
	dir := t.TempDir()
	if _, err := EnsureCA(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, CACertFile)); err != nil {
		t.Fatal(err)
	}
	_, err := EnsureCA(dir)
	if err == nil || !strings.Contains(err.Error(), "only one of") {
		t.Fatalf("EnsureCA with only ca.key: err = %v, want an 'only one of' error", err)
	}
	if _, statErr := os.Stat(filepath.Join(dir, CACertFile)); statErr == nil {
		t.Fatal("EnsureCA recreated ca.crt next to an existing key")
	}
}

func TestLoadCARefusesReadableKey(t *testing.T) {
	dir := t.TempDir()
	if _, err := EnsureCA(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, CAKeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureCA(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("err = %v, want a permission error", err)
	}
}

func TestLoadCARefusesMismatchedKey(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	if _, err := EnsureCA(a); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureCA(b); err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(filepath.Join(b, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(a, CAKeyFile), key, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCA(a); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("err = %v, want a mismatch error", err)
	}
}

func TestServerCertNamesAndReuse(t *testing.T) {
	dir := t.TempDir()
	ca, err := EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.EnsureServerCert(dir, []string{"vigil.example.org", "10.1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"localhost", "127.0.0.1", "::1", "vigil.example.org", "10.1.2.3"} {
		if err := c.Leaf.VerifyHostname(h); err != nil {
			t.Errorf("server cert does not name %s: %v", h, err)
		}
	}
	if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		t.Fatalf("server cert does not verify against the CA: %v", err)
	}
	fi, err := os.Stat(filepath.Join(dir, ServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("server.key mode = %04o, want 0600", fi.Mode().Perm())
	}

	same, err := ca.EnsureServerCert(dir, []string{"10.1.2.3", "VIGIL.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	if same.Leaf.SerialNumber.Cmp(c.Leaf.SerialNumber) != 0 {
		t.Fatal("server cert was reissued although it was still valid for the same names")
	}

	more, err := ca.EnsureServerCert(dir, []string{"other.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	if more.Leaf.SerialNumber.Cmp(c.Leaf.SerialNumber) == 0 || more.Leaf.VerifyHostname("other.example.org") != nil {
		t.Fatal("server cert was not reissued for a new host name")
	}
}

func TestServerCertRenewedWhenExpiring(t *testing.T) {
	dir := t.TempDir()
	ca, err := EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca.Clock = fixedClock(now.Add(-ServerValidity + RenewBefore/2))
	old, err := ca.EnsureServerCert(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ca.Clock = fixedClock(now)
	renewed, err := ca.EnsureServerCert(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if renewed.Leaf.SerialNumber.Cmp(old.Leaf.SerialNumber) == 0 {
		t.Fatalf("server cert expiring %s was not renewed", old.Leaf.NotAfter)
	}
	if renewed.Leaf.NotAfter.Before(now.Add(ServerValidity - time.Hour)) {
		t.Fatalf("renewed cert expires %s, too early", renewed.Leaf.NotAfter)
	}
}

func TestServerCertReissuedForNewCA(t *testing.T) {
	dir := t.TempDir()
	ca1, err := EnsureCA(filepath.Join(dir, "ca1"))
	if err != nil {
		t.Fatal(err)
	}
	c1, err := ca1.EnsureServerCert(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ca2, err := EnsureCA(filepath.Join(dir, "ca2"))
	if err != nil {
		t.Fatal(err)
	}
	c2, err := ca2.EnsureServerCert(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c2.Leaf.CheckSignatureFrom(ca2.Cert) != nil || c1.Leaf.SerialNumber.Cmp(c2.Leaf.SerialNumber) == 0 {
		t.Fatal("a server cert signed by another CA was reused")
	}
}

func TestTLSHandshakeWithPool(t *testing.T) {
	dir := t.TempDir()
	ca, err := EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.EnsureServerCert(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_, _ = c.Write([]byte("ok"))
		c.Close()
	}()
	conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("handshake against the CA pool failed: %v", err)
	}
	defer conn.Close()
	b, _ := io.ReadAll(conn)
	if string(b) != "ok" {
		t.Fatalf("read %q", b)
	}
}

func newCSR(t *testing.T, cn string) (*x509.CertificateRequest, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return csr, key
}

func TestSignClientCSR(t *testing.T) {
	dir := t.TempDir()
	ca, err := EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := newCSR(t, "i-want-to-be-admin")
	cert, certPEM, err := ca.SignClientCSR(csr, "cam-7", 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(certPEM) == 0 {
		t.Fatal("no PEM")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("client cert does not verify: %v", err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Fatal("client cert is also valid for server auth")
	}
	id, err := DeviceID(cert)
	if err != nil || id != "cam-7" {
		t.Fatalf("DeviceID = %q, %v; want cam-7 (the CSR's own subject must be ignored)", id, err)
	}

	f := func(csr *x509.CertificateRequest, device string, ttl time.Duration) {
		t.Helper()
		if _, _, err := ca.SignClientCSR(csr, device, ttl); vigil.ErrorCode(err) != vigil.EINVALID {
			t.Fatalf("SignClientCSR(%q, %s): err = %v, want EINVALID", device, ttl, err)
		}
	}
	f(nil, "cam-7", time.Hour)
	f(csr, "", time.Hour)
	f(csr, "cam-7", 0)
	f(csr, "cam-7", MaxClientTTL+time.Hour)
	bad := *csr
	bad.Signature = append([]byte(nil), csr.Signature...)
	bad.Signature[len(bad.Signature)-1] ^= 0xff
	f(&bad, "cam-7", time.Hour)

	if _, err := DeviceID(ca.Cert); err == nil {
		t.Fatal("DeviceID accepted the CA certificate")
	}
	if c := DeviceClass(cert); c != "" {
		t.Fatalf("DeviceClass of a certificate without class = %q", c)
	}
	sensor, _, err := ca.SignDeviceCSR(csr, "sensor-gw-1", "sensor", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if c := DeviceClass(sensor); c != "sensor" {
		t.Fatalf("DeviceClass = %q, want sensor", c)
	}
	if _, _, err := ca.SignDeviceCSR(csr, "sensor-gw-1", "sen\nsor", time.Hour); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Fatalf("a class with a newline: err = %v, want EINVALID", err)
	}
}

func TestEnsureServerCertRejectsEmptyHost(t *testing.T) {
	dir := t.TempDir()
	ca, err := EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.EnsureServerCert(dir, []string{" "}); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Fatalf("err = %v, want EINVALID", err)
	}
}

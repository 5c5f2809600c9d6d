package mqtt

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	agentmqtt "github.com/vigil-iot/vigil/agent/mqtt"
	"github.com/vigil-iot/vigil/pki"
	"github.com/vigil-iot/vigil/wire"
)

// TestTLSBrokerWithPassword starts a Mosquitto of its own with a TLS
// listener that requires a client certificate from a test CA and a
// password, and ingests a report through it.
func TestTLSBrokerWithPassword(t *testing.T) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		t.Skip("no mosquitto binary on PATH: cannot start a TLS broker")
	}
	passwd, err := exec.LookPath("mosquitto_passwd")
	if err != nil {
		t.Skip("no mosquitto_passwd binary on PATH: cannot start a TLS broker")
	}
	dir := t.TempDir()
	ca, err := pki.EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.EnsureServerCert(dir, nil); err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(dir, "passwd")
	if out, err := exec.Command(passwd, "-c", "-b", pwFile, "vigil", "s3cret").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v: %s", err, out)
	}
	addr, logs := startBroker(t, bin, dir, "allow_anonymous false\npassword_file "+pwFile+"\n")
	certPEM, keyPEM := clientCert(t, ca, "vigil-ingest")
	certFile, keyFile := filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	os.WriteFile(certFile, certPEM, 0o600)
	os.WriteFile(keyFile, keyPEM, 0o600)

	dev := unique("cam")
	rec := newRecorder(dev)
	s, err := New(Options{
		URL: "ssl://" + addr, ClientID: "vigil-ingest", Username: "vigil", Password: "s3cret",
		CAFile: filepath.Join(dir, pki.CACertFile), CertFile: certFile, KeyFile: keyFile,
		Publisher: rec,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-s.Subscribed():
	case <-time.After(waitLimit):
		t.Fatalf("source did not subscribe over TLS:\n%s", logs.String())
	}

	devCert, devKey := clientCert(t, ca, dev)
	kp, err := tls.X509KeyPair(devCert, devKey)
	if err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithTimeout(context.Background(), waitLimit)
	defer dcancel()
	c, err := agentmqtt.Dial(dctx, agentmqtt.Options{
		Addr: addr, ClientID: dev, Username: "vigil", Password: "s3cret",
		TLS: &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	publish(t, c, Topic(dev, "report"), simReport(t, wire.ContentTypeJSON))
	for _, e := range rec.waitEvents(t) {
		if e.DeviceID != dev {
			t.Errorf("event device %q, want %q", e.DeviceID, dev)
		}
	}

	// A CA file without a certificate, or half a key pair, is refused.
	if _, err := New(Options{URL: "ssl://" + addr, CAFile: pwFile, Publisher: rec}); err == nil {
		t.Error("New accepted a ca_file holding no certificate")
	}
	if _, err := New(Options{URL: "ssl://" + addr, CertFile: certFile, Publisher: rec}); err == nil {
		t.Error("New accepted a cert_file without key_file")
	}
}

// clientCert returns a client certificate and key (PEM) signed by ca.
func clientCert(t *testing.T, ca *pki.CA, cn string) (certPEM, keyPEM []byte) {
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
	_, certPEM, err = ca.SignClientCSR(csr, cn, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})
}

// startBroker starts a Mosquitto with a TLS listener on a free port that
// requires a client certificate of the CA in dir, with extra config lines;
// it returns the address and the broker's log.
func startBroker(t *testing.T, bin, dir, extra string) (string, *strings.Builder) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf := filepath.Join(dir, "mosquitto.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\nuser root\n%s",
		port, filepath.Join(dir, pki.CACertFile), filepath.Join(dir, pki.ServerCertFile), filepath.Join(dir, pki.ServerKeyFile), extra)), 0o600)
	cmd := exec.Command(bin, "-c", conf)
	logs := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr, logs
		}
		if i == 100 {
			t.Fatalf("mosquitto did not start:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

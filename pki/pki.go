package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
)

// File names inside the directory given to EnsureCA and EnsureServerCert.
const (
	CACertFile     = "ca.crt"
	CAKeyFile      = "ca.key"
	ServerCertFile = "server.crt"
	ServerKeyFile  = "server.key"
)

// Lifetimes of what this package issues.
const (
	// CAValidity is how long a new CA is valid.
	CAValidity = 10 * 365 * 24 * time.Hour
	// ServerValidity is how long a new server certificate is valid.
	ServerValidity = 365 * 24 * time.Hour
	// RenewBefore is how close to expiry a server certificate is replaced
	// on start.
	RenewBefore = 30 * 24 * time.Hour
	// MaxClientTTL bounds the lifetime of a signed client certificate.
	MaxClientTTL = 2 * 365 * 24 * time.Hour
)

// DefaultHosts are always in the server certificate's subject alternative names.
var defaultHosts = []string{"localhost", "127.0.0.1", "::1"}

// CA is Vigil's certificate authority: its certificate and private key.
// It is safe for concurrent use once loaded.
type CA struct {
	// Cert is the CA certificate.
	Cert *x509.Certificate
	// Clock tells the time used for validity periods; nil means the
	// system clock.
	Clock vigil.Clock

	key     crypto.Signer
	certPEM []byte
}

// EnsureCA loads the CA from dir (ca.crt and ca.key), or creates it there
// when neither file exists. The key is written with mode 0600 and dir is
// created with mode 0700 when missing. Having only one of the two files is
// an error: it is never silently replaced.
func EnsureCA(dir string) (*CA, error) {
	return ensureCA(dir, vigil.SystemClock{})
}

func ensureCA(dir string, clock vigil.Clock) (*CA, error) {
	certPath := filepath.Join(dir, CACertFile)
	keyPath := filepath.Join(dir, CAKeyFile)
	certOK, err := exists(certPath)
	if err != nil {
		return nil, err
	}
	keyOK, err := exists(keyPath)
	if err != nil {
		return nil, err
	}
	switch {
	case certOK && keyOK:
		return LoadCA(dir)
	case certOK != keyOK:
		return nil, fmt.Errorf("cannot load CA in %s: only one of %s and %s exists; restore the other or remove both to create a new CA", dir, CACertFile, CAKeyFile)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create CA directory: %w", err)
	}
	certPEM, keyPEM, err := NewCAPEM(clock)
	if err != nil {
		return nil, err
	}
	// The key goes first: a crash between the two writes leaves a key
	// without a certificate, which EnsureCA reports instead of replacing.
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return nil, err
	}
	return LoadCA(dir)
}

// NewCAPEM makes a new CA: its certificate and its private key, in PEM.
// A nil clock is the system clock.
func NewCAPEM(clock vigil.Clock) (certPEM, keyPEM []byte, err error) {
	if clock == nil {
		clock = vigil.SystemClock{}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	now := clock.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization: []string{"Vigil"},
			CommonName:   "Vigil CA " + serial.Text(16)[:8],
		},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot create CA certificate: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// ParseCA makes a CA of a PEM certificate and key (NewCAPEM's). It fails
// when they do not parse, do not match, or the certificate is not a CA.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("cannot load CA certificate: %w", err)
	}
	if !cert.IsCA {
		return nil, errors.New("cannot load CA certificate: it is not a CA certificate")
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("cannot load CA key: %w", err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, errors.New("cannot load CA: the key does not match the certificate")
	}
	return &CA{Cert: cert, key: key, certPEM: bytes.Clone(certPEM)}, nil
}

// WriteCertFile writes the CA certificate (public) to dir/CACertFile,
// where clients of this node find it, unless it already holds it.
func (ca *CA) WriteCertFile(dir string) error {
	path := filepath.Join(dir, CACertFile)
	if b, err := os.ReadFile(path); err == nil && bytes.Equal(b, ca.certPEM) {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cannot create CA directory: %w", err)
	}
	return writeFileAtomic(path, ca.certPEM, 0o644)
}

// LoadCA loads an existing CA from dir. It fails when the files are
// missing, unreadable, do not match, or the certificate is not a CA.
func LoadCA(dir string) (*CA, error) {
	certPath := filepath.Join(dir, CACertFile)
	keyPath := filepath.Join(dir, CAKeyFile)
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("cannot read CA certificate: %w", err)
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("cannot load CA certificate %s: %w", certPath, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("cannot load CA certificate %s: it is not a CA certificate", certPath)
	}
	if err := checkKeyPerm(keyPath); err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("cannot read CA key: %w", err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("cannot load CA key %s: %w", keyPath, err)
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, fmt.Errorf("cannot load CA in %s: %s does not match %s", dir, CAKeyFile, CACertFile)
	}
	return &CA{Cert: cert, key: key, certPEM: certPEM}, nil
}

func (ca *CA) now() time.Time {
	if ca.Clock == nil {
		return time.Now()
	}
	return ca.Clock.Now()
}

// Pool returns a certificate pool holding only this CA, for clients that
// verify Vigil's server certificate and for servers that verify device
// client certificates.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// CertPEM returns the CA certificate in PEM form, to hand to agents and
// clients.
func (ca *CA) CertPEM() []byte { return bytes.Clone(ca.certPEM) }

// EnsureServerCert returns the server certificate stored in dir
// (server.crt and server.key), creating or replacing it when it is missing,
// unreadable, not signed by this CA, expires within RenewBefore, or does not
// name every host. The names are localhost, 127.0.0.1 and ::1 plus hosts
// (DNS names or IP addresses).
func (ca *CA) EnsureServerCert(dir string, hosts []string) (tls.Certificate, error) {
	names := append(slices.Clone(defaultHosts), hosts...)
	for i, h := range names {
		h = strings.TrimSpace(h)
		if h == "" {
			return tls.Certificate{}, vigil.Errorf(vigil.EINVALID, "cannot issue server certificate: empty host name")
		}
		if ip := net.ParseIP(h); ip != nil {
			h = ip.String()
		} else {
			h = strings.ToLower(h)
		}
		names[i] = h
	}
	slices.Sort(names)
	names = slices.Compact(names)

	certPath := filepath.Join(dir, ServerCertFile)
	keyPath := filepath.Join(dir, ServerKeyFile)
	if c, ok := ca.usableServerCert(certPath, keyPath, names); ok {
		return c, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, fmt.Errorf("cannot create certificate directory: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cannot generate server key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return tls.Certificate{}, err
	}
	now := ca.now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"Vigil"}, CommonName: "vigil server"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(ServerValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range names {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cannot create server certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return tls.Certificate{}, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, err
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return tls.Certificate{}, err
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cannot load new server certificate: %w", err)
	}
	return c, nil
}

// usableServerCert loads the stored server certificate and reports whether
// it can be reused for names.
func (ca *CA) usableServerCert(certPath, keyPath string, names []string) (tls.Certificate, bool) {
	c, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil || c.Leaf == nil {
		return tls.Certificate{}, false
	}
	leaf := c.Leaf
	if err := leaf.CheckSignatureFrom(ca.Cert); err != nil {
		return tls.Certificate{}, false
	}
	now := ca.now()
	if now.Before(leaf.NotBefore) || now.Add(RenewBefore).After(leaf.NotAfter) {
		return tls.Certificate{}, false
	}
	for _, h := range names {
		if leaf.VerifyHostname(h) != nil {
			return tls.Certificate{}, false
		}
	}
	return c, true
}

// SignClientCSR signs a device's certificate request with no device class
// (SignDeviceCSR with class "").
func (ca *CA) SignClientCSR(csr *x509.CertificateRequest, deviceID string, ttl time.Duration) (*x509.Certificate, []byte, error) {
	return ca.SignDeviceCSR(csr, deviceID, "", ttl)
}

// SignDeviceCSR signs a device's certificate request: the certificate names
// the device in its common name and its class (camera, sensor, ...) in its
// organizational unit, is valid for client authentication only, and lives
// for ttl (at most MaxClientTTL). The CSR's own subject and extensions are
// ignored; only its public key is used, after its signature is checked. It
// returns the certificate and its PEM encoding.
func (ca *CA) SignDeviceCSR(csr *x509.CertificateRequest, deviceID, class string, ttl time.Duration) (*x509.Certificate, []byte, error) {
	if csr == nil {
		return nil, nil, vigil.Errorf(vigil.EINVALID, "cannot sign client certificate: no certificate request")
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, nil, vigil.Errorf(vigil.EINVALID, "cannot sign client certificate: bad request signature: %v", err)
	}
	if deviceID == "" || strings.ContainsAny(deviceID, "\x00\n\r") {
		return nil, nil, vigil.Errorf(vigil.EINVALID, "cannot sign client certificate: invalid device id %q", deviceID)
	}
	if strings.ContainsAny(class, "\x00\n\r") {
		return nil, nil, vigil.Errorf(vigil.EINVALID, "cannot sign client certificate: invalid device class %q", class)
	}
	if ttl <= 0 || ttl > MaxClientTTL {
		return nil, nil, vigil.Errorf(vigil.EINVALID, "cannot sign client certificate: ttl %s is not in (0, %s]", ttl, MaxClientTTL)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	now := ca.now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"Vigil devices"}, CommonName: deviceID},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.Add(ttl),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if class != "" {
		tmpl.Subject.OrganizationalUnit = []string{class}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, csr.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot sign client certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot parse signed client certificate: %w", err)
	}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// DeviceID returns the device id a client certificate signed by
// SignClientCSR names. The certificate must already be verified (by the TLS
// handshake against Pool()).
func DeviceID(cert *x509.Certificate) (string, error) {
	if cert == nil || cert.Subject.CommonName == "" || !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return "", vigil.Errorf(vigil.EUNAUTHORIZED, "client certificate names no device")
	}
	return cert.Subject.CommonName, nil
}

// DeviceClass returns the device class a certificate signed by
// SignDeviceCSR carries, or "" when it carries none (certificates issued
// before classes were recorded).
func DeviceClass(cert *x509.Certificate) string {
	if cert == nil || len(cert.Subject.OrganizationalUnit) == 0 {
		return ""
	}
	return cert.Subject.OrganizationalUnit[0]
}

func newSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("cannot generate serial number: %w", err)
	}
	return s.Add(s, big.NewInt(1)), nil
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("cannot encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func parseCertPEM(b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return x509.ParseCertificate(block.Bytes)
}

func parseKeyPEM(b []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var (
		k   any
		err error
	)
	switch block.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("unexpected PEM block %q", block.Type)
	}
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key of type %T cannot sign", k)
	}
	return s, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	ka, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && ka.Equal(b)
}

// checkKeyPerm refuses a private key that others than its owner can read.
func checkKeyPerm(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("cannot read CA key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("cannot use CA key %s: mode %04o lets others read it; run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	return nil
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, fmt.Errorf("cannot check %s: %w", path, err)
}

// writeFileAtomic writes data to a temporary file in path's directory,
// syncs it and renames it over path.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vigil-iot/vigil/agent/httpc"
	"github.com/vigil-iot/vigil/agent/protocol"
)

// Files in the state directory.
const (
	KeyFile        = "agent.key"   // ECDSA P-256 private key, 0600
	CertFile       = "agent.crt"   // client certificate, 0600
	CAFile         = "ca.crt"      // Vigil CA, 0600
	CommandKeyFile = "command.pub" // server's Ed25519 command key, 0600
	UpdateKeyFile  = "update.pub"  // server's Ed25519 update key, 0600 (absent: the server handed none)
	ServerFile     = "server.url"  // the server enrolled with
)

// Identity is the agent's enrolled identity, loaded from the state
// directory. Its certificate can be replaced (renewal) while in use.
type Identity struct {
	Dir        string
	DeviceID   string
	CA         *x509.CertPool
	CommandKey ed25519.PublicKey
	Server     string

	mu        sync.RWMutex
	cert      tls.Certificate
	updateKey ed25519.PublicKey
}

// LoadIdentity reads the identity of an enrolled agent from dir.
func LoadIdentity(dir string) (*Identity, error) {
	id := &Identity{Dir: dir}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile))
	if err != nil {
		return nil, fmt.Errorf("cannot load agent identity from %s (run vigil-agent enroll first): %w", dir, err)
	}
	id.cert = cert
	id.DeviceID = cert.Leaf.Subject.CommonName
	caPEM, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, fmt.Errorf("cannot load CA certificate: %w", err)
	}
	id.CA = x509.NewCertPool()
	if !id.CA.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("cannot load CA certificate %s: no PEM certificate", filepath.Join(dir, CAFile))
	}
	if id.CommandKey, err = loadPublicKey(filepath.Join(dir, CommandKeyFile), "command key"); err != nil {
		return nil, err
	}
	if id.updateKey, err = loadPublicKey(filepath.Join(dir, UpdateKeyFile), "update key"); err != nil {
		return nil, err
	}
	if b, err := os.ReadFile(filepath.Join(dir, ServerFile)); err == nil {
		id.Server = strings.TrimSpace(string(b))
	}
	return id, nil
}

// loadPublicKey reads an Ed25519 public key (PEM PUBLIC KEY) from path;
// nil without error when the file does not exist.
func loadPublicKey(path, what string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot load %s: %w", what, err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("cannot load %s %s: not PEM", what, path)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("cannot load %s: %w", what, err)
	}
	ek, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("cannot load %s: %T is not Ed25519", what, k)
	}
	return ek, nil
}

// publicKeyPEM encodes an Ed25519 public key as a PEM PUBLIC KEY block.
func publicKeyPEM(k ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// UpdateKey returns the server's public update key, which update
// artifacts must be signed with: the one its enrollment or last renewal
// answer carried (file update.pub); nil when the server handed none.
func (id *Identity) UpdateKey() ed25519.PublicKey {
	id.mu.RLock()
	defer id.mu.RUnlock()
	return id.updateKey
}

// setUpdateKey stores the update key a server answer carried (when it
// carried one) and switches to it; it reports whether the key changed.
// A key that is not an Ed25519 public key is an error.
func (id *Identity) setUpdateKey(k []byte) (bool, error) {
	if len(k) == 0 {
		return false, nil
	}
	if len(k) != ed25519.PublicKeySize {
		return false, fmt.Errorf("the server sent an update key of %d bytes, not an Ed25519 public key", len(k))
	}
	if ed25519.PublicKey(k).Equal(id.CommandKey) {
		return false, errors.New("the server's update key is its command key")
	}
	if id.UpdateKey().Equal(ed25519.PublicKey(k)) {
		return false, nil
	}
	b, err := publicKeyPEM(ed25519.PublicKey(k))
	if err != nil {
		return false, err
	}
	if err := writeFileAtomic(filepath.Join(id.Dir, UpdateKeyFile), b, 0o600); err != nil {
		return false, err
	}
	id.mu.Lock()
	id.updateKey = ed25519.PublicKey(slices.Clone(k))
	id.mu.Unlock()
	return true, nil
}

// Certificate returns the current client certificate.
func (id *Identity) Certificate() tls.Certificate {
	id.mu.RLock()
	defer id.mu.RUnlock()
	return id.cert
}

// TLSConfig returns a client configuration that presents the current
// certificate and trusts only Vigil's CA.
func (id *Identity) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    id.CA,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c := id.Certificate()
			return &c, nil
		},
	}
}

// EnrollOptions are the inputs of Enroll.
type EnrollOptions struct {
	Server   string // https URL
	Token    string
	StateDir string
	// CAFile, when set, is the CA that signs the server's certificate
	// (Vigil's CA, fetched out of band); otherwise the system roots.
	CAFile string
	// Hostname is sent as a hint for the device id.
	Hostname string
	// Client overrides the HTTP client (tests).
	Client *httpc.Client
}

// Enroll makes a new ECDSA P-256 key, sends a CSR with the enrollment
// token and stores the key, the certificate, the CA and the command key
// in the state directory with mode 0600. It refuses to overwrite an
// existing identity.
func Enroll(ctx context.Context, o EnrollOptions) (*Identity, error) {
	if !strings.HasPrefix(o.Server, "https://") {
		return nil, fmt.Errorf("cannot enroll: server %q must be an https:// URL", o.Server)
	}
	if o.Token == "" {
		return nil, errors.New("cannot enroll: no token")
	}
	if _, err := os.Stat(filepath.Join(o.StateDir, CertFile)); err == nil {
		return nil, fmt.Errorf("cannot enroll: %s already holds an identity; remove it to enroll again", o.StateDir)
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("cannot create state directory: %w", err)
	}
	client := o.Client
	if client == nil {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if o.CAFile != "" {
			b, err := os.ReadFile(o.CAFile)
			if err != nil {
				return nil, fmt.Errorf("cannot read CA file: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(b) {
				return nil, fmt.Errorf("cannot read CA file %s: no PEM certificate", o.CAFile)
			}
		}
		client = &httpc.Client{TLS: tc, Timeout: time.Minute, UserAgent: "vigil-agent/" + Version}
		defer client.Close()
	}
	key, csrPEM, err := newKeyAndCSR(o.Hostname)
	if err != nil {
		return nil, err
	}
	var resp protocol.EnrollResponse
	if err := postJSON(ctx, client, strings.TrimRight(o.Server, "/")+protocol.PathEnroll,
		protocol.EnrollRequest{Token: o.Token, CSR: string(csrPEM), Hostname: o.Hostname}, &resp); err != nil {
		return nil, fmt.Errorf("cannot enroll: %w", err)
	}
	if len(resp.CommandKey) != ed25519.PublicKeySize {
		return nil, errors.New("cannot enroll: the server sent no Ed25519 command key")
	}
	cmdPEM, err := publicKeyPEM(ed25519.PublicKey(resp.CommandKey))
	if err != nil {
		return nil, fmt.Errorf("cannot enroll: %w", err)
	}
	var updPEM []byte
	switch len(resp.UpdateKey) {
	case 0: // a server without an update key: updates are refused until one comes (renewal) or the config pins one
	case ed25519.PublicKeySize:
		if ed25519.PublicKey(resp.UpdateKey).Equal(ed25519.PublicKey(resp.CommandKey)) {
			return nil, errors.New("cannot enroll: the server's update key is its command key")
		}
		if updPEM, err = publicKeyPEM(ed25519.PublicKey(resp.UpdateKey)); err != nil {
			return nil, fmt.Errorf("cannot enroll: %w", err)
		}
	default:
		return nil, fmt.Errorf("cannot enroll: the server sent an update key of %d bytes, not an Ed25519 public key", len(resp.UpdateKey))
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("cannot enroll: %w", err)
	}
	if _, err := tls.X509KeyPair([]byte(resp.Certificate), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})); err != nil {
		return nil, fmt.Errorf("cannot enroll: the certificate does not match the key: %w", err)
	}
	files := []struct {
		name string
		data []byte
	}{
		{KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})},
		{CAFile, []byte(resp.CA)},
		{CommandKeyFile, cmdPEM},
		{UpdateKeyFile, updPEM},
		{ServerFile, []byte(o.Server + "\n")},
		{CertFile, []byte(resp.Certificate)}, // last: its presence means enrolled
	}
	for _, f := range files {
		if f.data == nil {
			continue
		}
		if err := writeFileAtomic(filepath.Join(o.StateDir, f.name), f.data, 0o600); err != nil {
			return nil, fmt.Errorf("cannot enroll: %w", err)
		}
	}
	return LoadIdentity(o.StateDir)
}

func newKeyAndCSR(cn string) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot generate key: %w", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot create certificate request: %w", err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// NeedsRenewal reports whether the certificate is in the last third of
// its lifetime.
func (id *Identity) NeedsRenewal(now time.Time) bool {
	leaf := id.Certificate().Leaf
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	return now.After(leaf.NotAfter.Add(-life / 3))
}

// Renew gets a new certificate for a new key over mTLS with the current
// one, stores both and switches to them. When the answer carries the
// server's update key, it is stored too (update.pub) and UpdateKey
// returns it: an agent enrolled before its server handed one gets it so.
func (id *Identity) Renew(ctx context.Context, client *httpc.Client, server string) error {
	key, csrPEM, err := newKeyAndCSR(id.DeviceID)
	if err != nil {
		return err
	}
	var resp protocol.RenewResponse
	if err := postJSON(ctx, client, strings.TrimRight(server, "/")+protocol.PathRenew, protocol.RenewRequest{CSR: string(csrPEM)}, &resp); err != nil {
		return fmt.Errorf("cannot renew certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("cannot renew certificate: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	cert, err := tls.X509KeyPair([]byte(resp.Certificate), keyPEM)
	if err != nil {
		return fmt.Errorf("cannot renew certificate: %w", err)
	}
	if cert.Leaf.Subject.CommonName != id.DeviceID {
		return fmt.Errorf("cannot renew certificate: it names %q, not %q", cert.Leaf.Subject.CommonName, id.DeviceID)
	}
	if err := writeFileAtomic(filepath.Join(id.Dir, KeyFile+".new"), keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(id.Dir, CertFile+".new"), []byte(resp.Certificate), 0o600); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(id.Dir, KeyFile+".new"), filepath.Join(id.Dir, KeyFile)); err != nil {
		return fmt.Errorf("cannot renew certificate: %w", err)
	}
	if err := os.Rename(filepath.Join(id.Dir, CertFile+".new"), filepath.Join(id.Dir, CertFile)); err != nil {
		return fmt.Errorf("cannot renew certificate: %w", err)
	}
	id.mu.Lock()
	id.cert = cert
	id.mu.Unlock()
	if _, err := id.setUpdateKey(resp.UpdateKey); err != nil {
		return fmt.Errorf("certificate renewed, but cannot store the update key: %w", err)
	}
	return nil
}

// postJSON posts v and decodes a 200 answer into out; another status is
// a *StatusError carrying the server's message.
func postJSON(ctx context.Context, c *httpc.Client, url string, v, out any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	resp, err := c.Do(ctx, "POST", url, map[string]string{"Content-Type": "application/json"}, body)
	if err != nil {
		return err
	}
	if resp.Status != 200 {
		return &StatusError{Status: resp.Status, Body: resp.Body}
	}
	if err := json.Unmarshal(resp.Body, out); err != nil {
		return fmt.Errorf("cannot decode answer of %s: %w", url, err)
	}
	return nil
}

// StatusError is a non-200 answer of the server.
type StatusError struct {
	Status int
	Body   []byte
}

func (e *StatusError) Error() string {
	var pe protocol.Error
	if json.Unmarshal(e.Body, &pe) == nil && pe.Error.Message != "" {
		return fmt.Sprintf("server answered %d: %s", e.Status, pe.Error.Message)
	}
	return fmt.Sprintf("server answered %d: %.200s", e.Status, e.Body)
}

func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	defer os.Remove(f.Name())
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
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}

package enroll

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/vigil-iot/vigil"
)

// RevokedFile is the revocation list's file name in the data directory.
const RevokedFile = "revoked.json"

// RevocationList is the list of revoked device certificates.
// Implementations are safe for concurrent use: Revocations (a file of one
// node) and StoreRevocations (a store.Revocations, shared by every node
// on one database).
type RevocationList interface {
	// RevokeDevice refuses every certificate issued to the device until
	// now. EINVALID for an empty id.
	RevokeDevice(deviceID string) error
	// RevokeSerial refuses one certificate, by its hex serial number.
	RevokeSerial(serialHex string) error
	// Check returns EUNAUTHORIZED when the certificate is revoked, or when
	// the list cannot be read (it fails closed).
	Check(cert *x509.Certificate) error
	// VerifyPeerCertificate is a tls.Config.VerifyPeerCertificate hook
	// that refuses a revoked client certificate during the handshake.
	VerifyPeerCertificate(raw [][]byte, chains [][]*x509.Certificate) error
}

var _ RevocationList = (*Revocations)(nil)

// Revocations is the list of revoked device certificates, by device id
// (every certificate the device was ever issued before the revocation) or
// by serial number. It is kept in a JSON file that is reread when it
// changes, so `vigil ctl` can revoke while the server runs. Safe for
// concurrent use.
type Revocations struct {
	path  string
	clock vigil.Clock

	mu    sync.Mutex
	mod   time.Time
	size  int64
	state revokedFile
}

type revokedFile struct {
	// Devices maps a device id to when it was revoked: certificates of the
	// device issued (NotBefore) before then are refused.
	Devices map[string]time.Time `json:"devices"`
	// Serials are single revoked certificates (hex serial → when).
	Serials map[string]time.Time `json:"serials"`
}

// OpenRevocations opens the list at path (a missing file is empty).
func OpenRevocations(path string, clock vigil.Clock) (*Revocations, error) {
	if clock == nil {
		clock = vigil.SystemClock{}
	}
	r := &Revocations{path: path, clock: clock}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.reload(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Revocations) reload() error {
	fi, err := os.Stat(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		r.state = revokedFile{Devices: map[string]time.Time{}, Serials: map[string]time.Time{}}
		r.mod, r.size = time.Time{}, -1
		return nil
	}
	if err != nil {
		return fmt.Errorf("cannot read revocation list: %w", err)
	}
	if fi.ModTime().Equal(r.mod) && fi.Size() == r.size {
		return nil
	}
	b, err := os.ReadFile(r.path)
	if err != nil {
		return fmt.Errorf("cannot read revocation list: %w", err)
	}
	var st revokedFile
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("cannot read revocation list %s: %w", r.path, err)
	}
	if st.Devices == nil {
		st.Devices = map[string]time.Time{}
	}
	if st.Serials == nil {
		st.Serials = map[string]time.Time{}
	}
	r.state, r.mod, r.size = st, fi.ModTime(), fi.Size()
	return nil
}

func (r *Revocations) save() error {
	b, err := json.MarshalIndent(r.state, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(r.path, b, 0o600); err != nil {
		return err
	}
	if fi, err := os.Stat(r.path); err == nil {
		r.mod, r.size = fi.ModTime(), fi.Size()
	}
	return nil
}

// RevokeDevice refuses every certificate issued to the device until now;
// the device must enroll again (with a new token) to come back.
func (r *Revocations) RevokeDevice(deviceID string) error {
	if deviceID == "" {
		return vigil.Errorf(vigil.EINVALID, "cannot revoke: empty device id")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.reload(); err != nil {
		return err
	}
	r.state.Devices[deviceID] = r.clock.Now().UTC()
	return r.save()
}

// RevokeSerial refuses one certificate.
func (r *Revocations) RevokeSerial(serialHex string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.reload(); err != nil {
		return err
	}
	r.state.Serials[serialHex] = r.clock.Now().UTC()
	return r.save()
}

// Check returns EUNAUTHORIZED when the certificate is revoked. An
// unreadable list fails closed.
func (r *Revocations) Check(cert *x509.Certificate) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.reload(); err != nil {
		return vigil.Errorf(vigil.EUNAUTHORIZED, "cannot check revocation: %v", err)
	}
	if _, ok := r.state.Serials[cert.SerialNumber.Text(16)]; ok {
		return vigil.Errorf(vigil.EUNAUTHORIZED, "client certificate %s is revoked", cert.SerialNumber.Text(16))
	}
	if at, ok := r.state.Devices[cert.Subject.CommonName]; ok && !cert.NotBefore.After(at) {
		return vigil.Errorf(vigil.EUNAUTHORIZED, "device %s is revoked", cert.Subject.CommonName)
	}
	return nil
}

// VerifyPeerCertificate is a tls.Config.VerifyPeerCertificate hook that
// refuses a revoked client certificate during the handshake. It runs
// after the chain was verified against ClientCAs; with no verified chain
// (no certificate given) it lets the connection through, for token
// clients.
func (r *Revocations) VerifyPeerCertificate(_ [][]byte, chains [][]*x509.Certificate) error {
	if len(chains) == 0 || len(chains[0]) == 0 {
		return nil
	}
	return r.Check(chains[0][0])
}

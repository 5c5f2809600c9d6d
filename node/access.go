package node

import (
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil/enroll"
	"github.com/vigil-iot/vigil/pki"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/vuln/scan"
)

// What the command line, the demo, the load generator and the tests
// reach of a node besides its API. Everything else goes through the API
// at URL, as an operator would.

// Config is the config the node was opened with (DataDir absolute).
func (a *Node) Config() Config { return a.cfg }

// CAPool holds the certificate of the node's CA, which signed its server
// certificate: what a client of the API trusts. The file is
// <data_dir>/pki/ca.crt.
func (a *Node) CAPool() *x509.CertPool { return a.ca.Pool() }

// CAFile is the path of the CA certificate file, what clients of the API
// are given (--ca).
func (a *Node) CAFile() string { return filepath.Join(a.cfg.DataDir, "pki", pki.CACertFile) }

// Store is the node's store, shared with the other nodes of a cluster.
// The node closes it.
func (a *Node) Store() store.Store { return a.store }

// Gatherer gives the node's metrics, as /metrics serves them.
func (a *Node) Gatherer() prometheus.Gatherer { return a.registry }

// CreateEnrollToken makes a one-time enrollment token for a device of
// class, valid for ttl, as `vigil ctl enroll-token create` does.
func (a *Node) CreateEnrollToken(class string, ttl time.Duration) (string, enroll.Token, error) {
	return a.enrollFiles.Tokens.Create(class, ttl)
}

// UpdatePublicKey is the key agents check update artifacts with.
func (a *Node) UpdatePublicKey() ed25519.PublicKey {
	return a.updateKey.Public().(ed25519.PublicKey)
}

// CommandPublicKey is the key agents check signed commands with.
func (a *Node) CommandPublicKey() ed25519.PublicKey {
	return a.enrollFiles.CommandKey.Public().(ed25519.PublicKey)
}

// RefreshDeviceIndex reloads now the index that gives the events of
// network monitors and log sources the inventory's device they name; it
// is otherwise reloaded every 30 s and after an event that names no known
// device (at most every 5 s). For tests and tools that just changed the
// inventory.
func (a *Node) RefreshDeviceIndex(ctx context.Context) error {
	if a.devmap == nil {
		return errors.New("cannot refresh the device index: the node is not started")
	}
	return a.devmap.Refresh(ctx)
}

// Vuln is the node's vulnerability database: sources imported, findings
// per device.
func (a *Node) Vuln() *scan.DB { return a.vuln }

package node

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/vigil-iot/vigil/audit"
	"github.com/vigil-iot/vigil/enroll"
	"github.com/vigil-iot/vigil/pki"
	"github.com/vigil-iot/vigil/store"
)

// SecretsKeyEnv names the secrets key file when the config does not
// (config key secrets_key_file, flag --secrets-key-file).
const SecretsKeyEnv = "VIGIL_SECRETS_KEY_FILE"

// serverKeys are the private keys of a server: the CA, the command and
// update signing keys and the audit key.
type serverKeys struct {
	ca      *pki.CA
	command ed25519.PrivateKey
	update  ed25519.PrivateKey
	audit   []byte
}

// sharedKeys reports whether the server keeps its keys in the store
// (shared by the nodes of a cluster) rather than in the data dir: with
// the postgres driver.
func (c Config) sharedKeys() bool { return c.Store.Driver == "postgres" }

// secretsKeyFile is the operator's secrets key file: the config's, else
// $VIGIL_SECRETS_KEY_FILE.
func (c Config) secretsKeyFile() string {
	if c.SecretsKeyFile != "" {
		return c.SecretsKeyFile
	}
	return os.Getenv(SecretsKeyEnv)
}

// loadSealer reads the secrets key a postgres deployment needs before
// anything is opened, so a missing or unreadable key stops the start
// with a message saying what to do.
func loadSealer(cfg Config) (*pki.Sealer, error) {
	path := cfg.secretsKeyFile()
	if path == "" {
		return nil, fmt.Errorf("cannot start with store.driver postgres without a secrets key: the CA, command, update and audit keys are shared by the nodes through the database, encrypted with it; "+
			"create one (umask 077; head -c 32 /dev/urandom | base64 > /etc/vigil/secrets.key), give every node the same file, and set secrets_key_file in the config, --secrets-key-file or $%s", SecretsKeyEnv)
	}
	return pki.LoadSealer(path)
}

// loadSharedKeys reads the server's keys from the store, sealed with
// sl. The first node of a cluster stores them: its data dir's key files
// when it has them (a node that ran before keeps its CA, so enrolled
// devices keep working), else new keys; other nodes, and nodes racing
// it, load the ones stored first. The CA certificate (public) is written
// to <data>/pki/ca.crt for the clients of this node, as before.
func loadSharedKeys(ctx context.Context, st store.Secrets, sl *pki.Sealer, dataDir string, log *slog.Logger) (serverKeys, error) {
	pkiDir := filepath.Join(dataDir, "pki")
	now := time.Now()
	var k serverKeys
	get := func(name string, create func() ([]byte, error)) ([]byte, error) {
		b, created, err := pki.SharedSecret(ctx, st, sl, name, create, now)
		if err != nil {
			if errors.Is(err, pki.ErrWrongSecretsKey) {
				return nil, fmt.Errorf("cannot load the shared keys: %w; start this node with the secrets key file the other nodes use", err)
			}
			return nil, fmt.Errorf("cannot load the shared keys: %w", err)
		}
		if created {
			log.Info("shared key stored encrypted in the database", "secret", name)
		}
		return b, nil
	}
	// localOr returns the key file of this data dir when there is one,
	// else a new key.
	localOr := func(path string, fresh func() ([]byte, error)) func() ([]byte, error) {
		return func() ([]byte, error) {
			b, err := os.ReadFile(path)
			if errors.Is(err, fs.ErrNotExist) {
				return fresh()
			}
			if err != nil {
				return nil, fmt.Errorf("cannot read %s to share it: %w", path, err)
			}
			log.Info("sharing this data dir's key through the database", "file", path)
			return b, nil
		}
	}

	caB, err := get(pki.SecretCA, func() ([]byte, error) {
		certPEM, errC := os.ReadFile(filepath.Join(pkiDir, pki.CACertFile))
		keyPEM, errK := os.ReadFile(filepath.Join(pkiDir, pki.CAKeyFile))
		if errC == nil && errK == nil {
			if _, err := pki.ParseCA(certPEM, keyPEM); err != nil {
				return nil, fmt.Errorf("cannot share the CA of %s: %w", pkiDir, err)
			}
			log.Info("sharing this data dir's CA through the database", "dir", pkiDir)
			return pki.JoinCA(certPEM, keyPEM), nil
		}
		certPEM, keyPEM, err := pki.NewCAPEM(nil)
		if err != nil {
			return nil, err
		}
		return pki.JoinCA(certPEM, keyPEM), nil
	})
	if err != nil {
		return k, err
	}
	certPEM, keyPEM, err := pki.SplitCA(caB)
	if err != nil {
		return k, err
	}
	if k.ca, err = pki.ParseCA(certPEM, keyPEM); err != nil {
		return k, err
	}
	if old, err := os.ReadFile(filepath.Join(pkiDir, pki.CACertFile)); err == nil && !bytes.Equal(old, certPEM) {
		log.Warn("this data dir's CA is not the cluster's: the cluster's replaces ca.crt; devices enrolled with the old CA must enroll again", "dir", pkiDir)
	}
	if err := k.ca.WriteCertFile(pkiDir); err != nil {
		return k, err
	}

	cmdB, err := get(pki.SecretCommandKey, localOr(filepath.Join(dataDir, "enroll", enroll.CommandKeyFile), enroll.NewKeyPEM))
	if err != nil {
		return k, err
	}
	if k.command, err = enroll.ParseKeyPEM(cmdB); err != nil {
		return k, fmt.Errorf("cannot read the shared command key: %w", err)
	}
	updB, err := get(pki.SecretUpdateKey, localOr(filepath.Join(pkiDir, enroll.UpdateKeyFile), enroll.NewKeyPEM))
	if err != nil {
		return k, err
	}
	if k.update, err = enroll.ParseKeyPEM(updB); err != nil {
		return k, fmt.Errorf("cannot read the shared update key: %w", err)
	}
	auditPath := filepath.Join(pkiDir, audit.KeyFile)
	if k.audit, err = get(pki.SecretAuditKey, func() ([]byte, error) {
		b, err := audit.LoadKey(auditPath)
		if errors.Is(err, fs.ErrNotExist) {
			return audit.NewKey()
		}
		if err == nil {
			log.Info("sharing this data dir's key through the database", "file", auditPath)
		}
		return b, err
	}); err != nil {
		return k, err
	}
	if err := audit.CheckKey(k.audit); err != nil {
		return k, err
	}
	return k, nil
}

// openSharedKeys loads the keys from the store (a.store is open) into the
// app, and makes the store seal the audit trail with the shared audit key.
func (a *Node) openSharedKeys(ctx context.Context, sl *pki.Sealer) error {
	k, err := loadSharedKeys(ctx, a.store, sl, a.cfg.DataDir, a.log)
	if err != nil {
		return err
	}
	a.ca, a.enrollFiles.CommandKey, a.updateKey, a.auditKey = k.ca, k.command, k.update, k.audit
	sk, ok := a.store.(interface{ SetAuditKey([]byte) })
	if !ok {
		return fmt.Errorf("cannot share the audit key: the %T store cannot take it", a.store)
	}
	sk.SetAuditKey(k.audit)
	return nil
}

// importCommandQueue moves the commands.json of an older data dir into
// the store, once.
func (a *Node) importCommandQueue() error {
	path := filepath.Join(a.cfg.DataDir, "enroll", enroll.QueueFile)
	n, err := enroll.ImportQueueFile(a.store, path, nil)
	if err != nil {
		return err
	}
	if n > 0 {
		a.log.Info("imported queued commands into the store", "file", path, "commands", n, "renamed_to", path+enroll.ImportedSuffix)
	}
	return nil
}

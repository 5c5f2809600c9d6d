package mqtt

import (
	"context"
	"crypto/tls"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	agentmqtt "github.com/vigil-iot/vigil/agent/mqtt"
	"github.com/vigil-iot/vigil/ingest/mqtt/mqtttest"
	"github.com/vigil-iot/vigil/pki"
	"github.com/vigil-iot/vigil/wire"
)

// TestTLSBrokerWithPassword starts a Mosquitto of its own with a TLS
// listener that requires a client certificate from a test CA and a
// password, and ingests a report through it.
func TestTLSBrokerWithPassword(t *testing.T) {
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
	addr, logs := mqtttest.StartTLSBroker(t, dir, "allow_anonymous false\npassword_file "+pwFile+"\n")
	certPEM, keyPEM := mqtttest.ClientCert(t, ca, "vigil-ingest")
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

	devCert, devKey := mqtttest.ClientCert(t, ca, dev)
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

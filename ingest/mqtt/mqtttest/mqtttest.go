// Package mqtttest starts the real Mosquitto for tests that need a broker
// of their own with a mutual-TLS listener (the shared one on
// 127.0.0.1:1883 is plain), and makes the client certificates such a
// listener asks for.
package mqtttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
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

	"github.com/vigil-iot/vigil/pki"
)

// StartTLSBroker starts a Mosquitto with a TLS listener on a free
// loopback port that presents the server certificate of the pki CA in dir
// (pki.EnsureCA and CA.EnsureServerCert must have made them) and requires
// a client certificate of that CA, with extra configuration lines. It
// returns the broker's address and log; the broker stops when the test
// ends. The test is skipped when mosquitto is not installed.
func StartTLSBroker(t testing.TB, dir, extra string) (addr string, logs *strings.Builder) {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		t.Skip("no mosquitto binary on PATH: cannot start a TLS broker")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\nuser root\n%s",
		port, filepath.Join(dir, pki.CACertFile), filepath.Join(dir, pki.ServerCertFile), filepath.Join(dir, pki.ServerKeyFile), extra)), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", conf)
	logs = &strings.Builder{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr = fmt.Sprintf("127.0.0.1:%d", port)
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

// ClientCert returns a new client certificate for cn signed by ca, and
// its ECDSA P-256 key, both PEM.
func ClientCert(t testing.TB, ca *pki.CA, cn string) (certPEM, keyPEM []byte) {
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

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

	"github.com/vigil-iot/vigil/pki"
)

func roundTrip(t *testing.T, dial func(id string) (*Client, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := dial(fmt.Sprintf("vigil-test-sub-%d", os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	topic := fmt.Sprintf("vigil/test-%d/report", os.Getpid())
	if err := sub.Subscribe(ctx, "vigil/+/report"); err != nil {
		t.Fatal(err)
	}
	pub, err := dial(fmt.Sprintf("vigil-test-pub-%d", os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	big := make([]byte, 200_000) // a multi-byte remaining length
	big[0], big[len(big)-1] = 'a', 'z'
	for _, payload := range [][]byte{[]byte(`{"version":"1"}`), big} {
		if err := pub.Publish(ctx, topic, payload, true); err != nil {
			t.Fatal(err)
		}
		for {
			select {
			case m := <-sub.Messages():
				if m.Topic != topic {
					continue // another test's traffic on a shared broker
				}
				if len(m.Payload) != len(payload) || m.Payload[0] != payload[0] || m.Payload[len(m.Payload)-1] != payload[len(payload)-1] {
					t.Fatalf("payload of %d bytes, want %d", len(m.Payload), len(payload))
				}
			case <-ctx.Done():
				t.Fatal("message not received")
			}
			break
		}
	}
}

// TestPlainBroker runs against the Mosquitto of VIGIL_TEST_MQTT_ADDR.
func TestPlainBroker(t *testing.T) {
	addr := os.Getenv("VIGIL_TEST_MQTT_ADDR")
	if addr == "" {
		t.Skip("set VIGIL_TEST_MQTT_ADDR=127.0.0.1:1883 to test against a real broker")
	}
	roundTrip(t, func(id string) (*Client, error) {
		return Dial(context.Background(), Options{Addr: addr, ClientID: id, KeepAlive: 5 * time.Second})
	})
}

// TestMutualTLSBroker starts a Mosquitto with a TLS listener that
// requires client certificates from Vigil's CA.
func TestMutualTLSBroker(t *testing.T) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		t.Skip("no mosquitto binary")
	}
	dir := t.TempDir()
	ca, err := pki.EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.EnsureServerCert(dir, nil); err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	conf := filepath.Join(dir, "mosquitto.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\nallow_anonymous true\nuser root\n",
		port, filepath.Join(dir, pki.CACertFile), filepath.Join(dir, pki.ServerCertFile), filepath.Join(dir, pki.ServerKeyFile))), 0o600)
	cmd := exec.Command(bin, "-c", conf)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; ; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if i == 100 {
			t.Fatalf("mosquitto did not start:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	clientCert := func(id string) tls.Certificate {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: id}}, key)
		csr, _ := x509.ParseCertificateRequest(der)
		_, certPEM, err := ca.SignClientCSR(csr, id, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		kd, _ := x509.MarshalPKCS8PrivateKey(key)
		c, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	roundTrip(t, func(id string) (*Client, error) {
		cfg := &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{clientCert(id)}, MinVersion: tls.VersionTLS12}
		return Dial(context.Background(), Options{Addr: addr, TLS: cfg, ClientID: id})
	})
	// Without a client certificate the broker refuses.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, err := Dial(ctx, Options{Addr: addr, TLS: &tls.Config{RootCAs: ca.Pool()}, ClientID: "nocert"}); err == nil {
		c.Close()
		t.Fatal("connected without a client certificate")
	}
}

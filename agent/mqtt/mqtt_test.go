package mqtt

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/ingest/mqtt/mqtttest"
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
	dir := t.TempDir()
	ca, err := pki.EnsureCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.EnsureServerCert(dir, nil); err != nil {
		t.Fatal(err)
	}
	addr, _ := mqtttest.StartTLSBroker(t, dir, "allow_anonymous true\n")
	clientCert := func(id string) tls.Certificate {
		c, err := tls.X509KeyPair(mqtttest.ClientCert(t, ca, id))
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

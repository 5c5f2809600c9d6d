package mqtt

import (
	"context"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	agentmqtt "github.com/vigil-iot/vigil/agent/mqtt"
	"github.com/vigil-iot/vigil/wire"
)

// counter is a Publisher counting the reports of one device.
type counter struct {
	dev  string
	n    atomic.Int64
	done chan struct{}
	want int64
}

func (c *counter) PublishEvents(_ context.Context, evs []vigil.Event) error {
	if len(evs) > 0 && evs[0].DeviceID == c.dev && c.n.Add(1) == c.want {
		close(c.done)
	}
	return nil
}

// BenchmarkReports measures reports from one device through the broker,
// decoding, conversion and acknowledgement (ns/op is per report).
func BenchmarkReports(b *testing.B) {
	addr := os.Getenv("VIGIL_TEST_MQTT_ADDR")
	if addr == "" {
		b.Skip("set VIGIL_TEST_MQTT_ADDR=127.0.0.1:1883 to benchmark against a real Mosquitto")
	}
	dev := unique("bench")
	pub := &counter{dev: dev, done: make(chan struct{}), want: int64(b.N)}
	id := unique("vigil-bench")
	defer dropSession(addr, id)
	s, err := New(Options{URL: "tcp://" + addr, ClientID: id, Publisher: pub, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-s.Subscribed()
	payload, err := encodeSimReport(wire.ContentTypeJSON)
	if err != nil {
		b.Fatal(err)
	}
	c, err := agentmqtt.Dial(context.Background(), agentmqtt.Options{Addr: addr, ClientID: dev})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ResetTimer()
	for range b.N {
		if err := c.Publish(context.Background(), Topic(dev, "report"), payload, true); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-pub.done:
	case <-time.After(time.Minute):
		b.Fatalf("%d of %d reports arrived", pub.n.Load(), b.N)
	}
}

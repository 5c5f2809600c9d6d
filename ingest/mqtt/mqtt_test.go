package mqtt

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/agent/command"
	agentmqtt "github.com/vigil-iot/vigil/agent/mqtt"
	"github.com/vigil-iot/vigil/bus"
	"github.com/vigil-iot/vigil/sim"
	"github.com/vigil-iot/vigil/wire"
)

// waitLimit bounds every wait for the broker, so a broken path fails the
// test instead of hanging it. It is not a speed assertion.
const waitLimit = 20 * time.Second

func brokerAddr(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("VIGIL_TEST_MQTT_ADDR")
	if addr == "" {
		t.Skip("set VIGIL_TEST_MQTT_ADDR=127.0.0.1:1883 to test against a real Mosquitto")
	}
	return addr
}

// recorder is a Publisher that keeps the events of one device; fail makes
// its first calls for that device fail with bus.ErrBackpressure, block
// makes every call wait for ctx.
type recorder struct {
	dev   string
	mu    sync.Mutex
	evs   []vigil.Event
	calls int
	fail  int
	block bool
	got   chan struct{} // signalled on every call for dev
}

func newRecorder(dev string) *recorder {
	return &recorder{dev: dev, got: make(chan struct{}, 100)}
}

func (r *recorder) PublishEvents(ctx context.Context, evs []vigil.Event) error {
	mine := false
	for _, e := range evs {
		if e.DeviceID == r.dev {
			mine = true
		}
	}
	if !mine {
		return nil // another test's or device's report
	}
	r.mu.Lock()
	r.calls++
	fail := r.calls <= r.fail
	if !fail && !r.block {
		r.evs = append(r.evs, evs...)
	}
	r.mu.Unlock()
	select {
	case r.got <- struct{}{}:
	default:
	}
	if r.block {
		<-ctx.Done()
		return ctx.Err()
	}
	if fail {
		return bus.ErrBackpressure
	}
	return nil
}

func (r *recorder) events() []vigil.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]vigil.Event(nil), r.evs...)
}

// waitEvents waits until the recorder holds events.
func (r *recorder) waitEvents(t *testing.T) []vigil.Event {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		if evs := r.events(); len(evs) > 0 {
			return evs
		}
		select {
		case <-r.got:
		case <-deadline:
			t.Fatalf("no events of %s reached the publisher", r.dev)
		}
	}
}

// syncBuffer is a log sink safe for the source's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// unique returns a name no other run used.
func unique(prefix string) string { return prefix + "-" + vigil.NewID()[:24] }

// startSource runs a Source with o (URL, ClientID and RetryInterval
// filled in) until the test ends, and waits for its subscription.
func startSource(t *testing.T, addr string, o Options) (*Source, context.CancelFunc) {
	t.Helper()
	o.URL = "tcp://" + addr
	if o.ClientID == "" {
		o.ClientID = unique("vigil-test")
		t.Cleanup(func() { dropSession(addr, o.ClientID) })
	}
	if o.RetryInterval == 0 {
		o.RetryInterval = 10 * time.Millisecond
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-s.Subscribed():
	case err := <-done:
		t.Fatalf("Run ended before subscribing: %v", err)
	case <-time.After(waitLimit):
		t.Fatal("source did not subscribe")
	}
	return s, cancel
}

// dropSession removes the persistent session of a test's client id.
func dropSession(addr, id string) {
	c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + addr).SetClientID(id).SetCleanSession(true))
	if t := c.Connect(); t.WaitTimeout(5*time.Second) && t.Error() == nil {
		c.Disconnect(0)
	}
}

// device dials the broker as an agent does (the agent's own client).
func device(t *testing.T, addr, id string) *agentmqtt.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	c, err := agentmqtt.Dial(ctx, agentmqtt.Options{Addr: addr, ClientID: id, KeepAlive: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func publish(t *testing.T, c *agentmqtt.Client, topic string, payload []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := c.Publish(ctx, topic, payload, true); err != nil {
		t.Fatal(err)
	}
}

// simReport returns a simulated report that names another device than
// the topic will, encoded as the agent sends it (gzip of JSON or XML).
func simReport(t *testing.T, contentType string) []byte {
	t.Helper()
	b, err := encodeSimReport(contentType)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func encodeSimReport(contentType string) ([]byte, error) {
	now := time.Now().UTC()
	f := sim.NewFleet(1, 7, now.Add(-time.Hour))
	r := f.Report(f.Devices[0], now)
	r.DeviceID = "not-the-topic-device"
	var body bytes.Buffer
	zw := gzip.NewWriter(&body)
	if err := wire.EncodeReport(zw, contentType, r); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return body.Bytes(), nil
}

func TestReportEventsReachPublisher(t *testing.T) {
	addr := brokerAddr(t)
	for _, ct := range []string{wire.ContentTypeJSON, wire.ContentTypeXML} {
		t.Run(ct, func(t *testing.T) {
			dev := unique("cam")
			rec := newRecorder(dev)
			startSource(t, addr, Options{Publisher: rec})
			c := device(t, addr, dev)
			publish(t, c, Topic(dev, "report"), simReport(t, ct))
			evs := rec.waitEvents(t)
			kinds := map[string]bool{}
			for _, e := range evs {
				if e.DeviceID != dev {
					t.Errorf("event %s has device %q, want the topic's %q", e.ID, e.DeviceID, dev)
				}
				if e.Source != "agent" {
					t.Errorf("event source %q, want agent", e.Source)
				}
				if e.Provenance != "mqtt:"+dev {
					t.Errorf("event provenance %q, want mqtt:%s", e.Provenance, dev)
				}
				kinds[e.Kind] = true
			}
			if !kinds[vigil.KindHealth] {
				t.Errorf("no health event among %v", kinds)
			}
		})
	}
}

func TestMalformedPayloadDoesNotStopSource(t *testing.T) {
	addr := brokerAddr(t)
	dev := unique("gw")
	rec := newRecorder(dev)
	var logs syncBuffer
	s, _ := startSource(t, addr, Options{Publisher: rec, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	c := device(t, addr, dev)
	publish(t, c, Topic(dev, "report"), []byte("this is not a report"))
	publish(t, c, Topic(dev, "report"), []byte(`{"version":"1","device_id":`))
	publish(t, c, Topic(dev, "report"), simReport(t, wire.ContentTypeJSON))
	rec.waitEvents(t) // handled in order: the bad ones came first
	if got := s.Stats().Bad; got < 2 {
		t.Errorf("Bad = %d, want at least 2", got)
	}
	if n := strings.Count(logs.String(), "topic="+Topic(dev, "report")); n < 2 {
		t.Errorf("want 2 log lines naming the topic, got %d in:\n%s", n, logs.String())
	}
}

func TestBackpressureIsRetriedBeforeAck(t *testing.T) {
	addr := brokerAddr(t)
	dev := unique("router")
	rec := newRecorder(dev)
	rec.fail = 3
	s, _ := startSource(t, addr, Options{Publisher: rec})
	c := device(t, addr, dev)
	publish(t, c, Topic(dev, "report"), simReport(t, wire.ContentTypeJSON))
	rec.waitEvents(t)
	if got := s.Stats().Retries; got < 3 {
		t.Errorf("Retries = %d, want at least 3", got)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if rec.calls != 4 {
		t.Errorf("publisher called %d times for the report, want 4 (3 refused, 1 taken)", rec.calls)
	}
}

// TestUnacknowledgedReportIsRedelivered stops a source whose bus never
// took a report and starts another on the same session: the broker
// delivers the report again.
func TestUnacknowledgedReportIsRedelivered(t *testing.T) {
	addr := brokerAddr(t)
	dev := unique("cam")
	id := unique("vigil-test")
	t.Cleanup(func() { dropSession(addr, id) })

	stuck := newRecorder(dev)
	stuck.block = true
	_, stop := startSource(t, addr, Options{ClientID: id, Publisher: stuck})
	c := device(t, addr, dev)
	publish(t, c, Topic(dev, "report"), simReport(t, wire.ContentTypeJSON))
	select {
	case <-stuck.got:
	case <-time.After(waitLimit):
		t.Fatal("the report never reached the first source")
	}
	stop()

	rec := newRecorder(dev)
	startSource(t, addr, Options{ClientID: id, Publisher: rec})
	for _, e := range rec.waitEvents(t) {
		if e.DeviceID != dev {
			t.Errorf("redelivered event has device %q", e.DeviceID)
		}
	}
}

func TestSendCommandAndResult(t *testing.T) {
	addr := brokerAddr(t)
	dev := unique("cam")
	results := make(chan command.Result, 10)
	s, _ := startSource(t, addr, Options{Publisher: newRecorder(dev), OnResult: func(_ context.Context, r command.Result) {
		if r.CommandID == "cmd-"+dev {
			results <- r
		}
	}})
	c := device(t, addr, dev)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := c.Subscribe(ctx, Topic(dev, "cmd")); err != nil {
		t.Fatal(err)
	}
	signed, _ := json.Marshal(command.Signed{Payload: []byte(`{"id":"x"}`), Signature: []byte("sig")})
	if err := s.SendCommand(dev, signed); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-c.Messages():
		if m.Topic != Topic(dev, "cmd") || !bytes.Equal(m.Payload, signed) {
			t.Errorf("device got %s %q, want %s %q", m.Topic, m.Payload, Topic(dev, "cmd"), signed)
		}
	case <-ctx.Done():
		t.Fatal("the device never received the command")
	}

	// A result with an unknown status is dropped; results are handled in
	// order, so the first to reach OnResult is the valid one after it.
	bad, _ := json.Marshal(command.Result{CommandID: "cmd-" + dev, Status: "ok"})
	publish(t, c, Topic(dev, "result"), bad)
	res, _ := json.Marshal(command.Result{CommandID: "cmd-" + dev, DeviceID: "someone-else", Status: command.StatusSucceeded})
	publish(t, c, Topic(dev, "result"), res)
	select {
	case r := <-results:
		if r.DeviceID != dev || r.Status != command.StatusSucceeded {
			t.Errorf("result %+v, want device %s status %s", r, dev, command.StatusSucceeded)
		}
	case <-ctx.Done():
		t.Fatal("the result never reached OnResult")
	}

	if err := s.SendCommand("a/b", signed); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Errorf("SendCommand to a/b: %v, want EINVALID", err)
	}
}

func TestDecodeReport(t *testing.T) {
	js, err := os.ReadFile("../../wire/testdata/report.json")
	if err != nil {
		t.Fatal(err)
	}
	xm, err := os.ReadFile("../../wire/testdata/report.xml")
	if err != nil {
		t.Fatal(err)
	}
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(b)
		zw.Close()
		return buf.Bytes()
	}
	for name, p := range map[string][]byte{
		"json": js, "xml": xm, "gzip json": gz(js), "gzip xml": gz(xm),
		"leading blanks": append([]byte("\n  "), js...),
	} {
		r, err := DecodeReport(p, 1<<20)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if r.DeviceID == "" {
			t.Errorf("%s: no device id decoded", name)
		}
	}
	for name, p := range map[string][]byte{
		"empty": nil, "text": []byte("hello"), "broken gzip": {0x1f, 0x8b, 1, 2},
		"truncated json": js[:len(js)/2], "too large": gz(js),
	} {
		limit := int64(1 << 20)
		if name == "too large" {
			limit = 10
		}
		if _, err := DecodeReport(p, limit); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	pub := newRecorder("x")
	for name, o := range map[string]Options{
		"no url":       {Publisher: pub},
		"no scheme":    {URL: "127.0.0.1:1883", Publisher: pub},
		"bad scheme":   {URL: "http://127.0.0.1:1883", Publisher: pub},
		"no host":      {URL: "tcp://", Publisher: pub},
		"no publisher": {URL: "tcp://127.0.0.1:1883"},
		"missing ca":   {URL: "ssl://127.0.0.1:8883", CAFile: "/nonexistent/ca.pem", Publisher: pub},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: New accepted %+v", name, o)
		}
	}
	if _, err := New(Options{URL: "mqtts://broker.example:8883", Publisher: pub}); err != nil {
		t.Errorf("mqtts URL: %v", err)
	}
}

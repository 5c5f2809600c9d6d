package mqtt

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/ingest"
	"github.com/vigil-iot/vigil/ingest/agent"
	"github.com/vigil-iot/vigil/wire"
)

// Topic filters the Source subscribes to.
const (
	ReportFilter = "vigil/+/report"
	ResultFilter = "vigil/+/result"
)

// schemes are the broker URL schemes paho dials.
var schemes = []string{"tcp", "mqtt", "ssl", "tls", "mqtts", "mqtt+ssl", "tcps", "ws", "wss"}

// Publisher takes decoded events; bus.Bus is one. PublishEvents returns an
// error (bus.ErrBackpressure when the bus cannot take more now) when the
// events were not taken; the Source then retries.
type Publisher interface {
	PublishEvents(ctx context.Context, events []vigil.Event) error
}

// Options configures New.
type Options struct {
	// URL is the broker: tcp://host:1883, or ssl://, tls:// or mqtts://
	// for TLS. Required.
	URL string
	// ClientID names the persistent session; default "vigil-ingest". Two
	// servers must not share one.
	ClientID string
	// Username and Password are sent when set.
	Username, Password string
	// CAFile, when set, is a PEM file of the CAs that sign the broker's
	// certificate (otherwise the system roots are used for TLS URLs).
	CAFile string
	// CertFile and KeyFile, when set, are the PEM client certificate and
	// key the Source presents (a broker with require_certificate).
	CertFile, KeyFile string
	// Publisher takes the events of reports. Required.
	Publisher Publisher
	// OnResult receives the command results agents publish, with the
	// device id of the topic (it should check that the command was issued
	// to that device). Nil: results are acknowledged and dropped.
	OnResult func(ctx context.Context, r command.Result)
	// MaxPayload bounds a report after decompression; default 4 MiB.
	MaxPayload int64
	// RetryInterval is the first pause before publishing again after the
	// Publisher failed (doubling up to 5 s); default 200 ms.
	RetryInterval time.Duration
	// Clock gives the received time of events; default the system clock.
	Clock vigil.Clock
	// Logger gets component=mqtt-ingest; default slog.Default().
	Logger *slog.Logger
	// Registerer receives the metrics; nil registers none.
	Registerer prometheus.Registerer
	// MaxFuture is how far after the clock an event's time may be
	// (default ingest.DefaultMaxFuture, negative: no bound); later events
	// are dropped, a later report as a whole.
	MaxFuture time.Duration
	// Redactor removes credentials from event fields (nil: the built-in
	// rules).
	Redactor *ingest.Redactor
}

// Stats are the Source's counters since New.
type Stats struct {
	// Reports were decoded and their events published.
	Reports uint64
	// Events were published.
	Events uint64
	// Bad payloads (reports or results) could not be read.
	Bad uint64
	// Results were passed to OnResult.
	Results uint64
	// Retries are failed PublishEvents calls that were retried.
	Retries uint64
}

// Source is the MQTT ingest of agent reports and command results.
type Source struct {
	o      Options
	log    *slog.Logger
	client paho.Client
	in     chan paho.Message
	stop   chan struct{}

	subOnce    sync.Once
	subscribed chan struct{}

	reports, events, bad, results, retries atomic.Uint64

	mMessages *prometheus.CounterVec
	mEvents   prometheus.Counter
	mRetries  prometheus.Counter
}

// New checks o and prepares a Source; Run connects.
func New(o Options) (*Source, error) {
	if o.URL == "" {
		return nil, vigil.Errorf(vigil.EINVALID, "mqtt ingest: url is required")
	}
	if u, err := url.Parse(o.URL); err != nil || u.Host == "" || !slices.Contains(schemes, u.Scheme) {
		return nil, vigil.Errorf(vigil.EINVALID, "mqtt ingest: url %q is not scheme://host:port with a scheme of %s", o.URL, strings.Join(schemes, ", "))
	}
	if o.Publisher == nil {
		return nil, vigil.Errorf(vigil.EINVALID, "mqtt ingest: a publisher is required")
	}
	if o.ClientID == "" {
		o.ClientID = "vigil-ingest"
	}
	if o.MaxPayload <= 0 {
		o.MaxPayload = 4 << 20
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = 200 * time.Millisecond
	}
	if o.Clock == nil {
		o.Clock = vigil.SystemClock{}
	}
	if o.MaxFuture == 0 {
		o.MaxFuture = ingest.DefaultMaxFuture
	}
	if o.Redactor == nil {
		o.Redactor = &ingest.Redactor{}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Source{
		o:    o,
		log:  o.Logger.With("component", "mqtt-ingest"),
		in:   make(chan paho.Message, 64),
		stop: make(chan struct{}),

		subscribed: make(chan struct{}),
		mMessages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_mqtt_ingest_messages_total",
			Help: "MQTT messages received by kind (report, result) and outcome (ok, bad).",
		}, []string{"kind", "outcome"}),
		mEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_mqtt_ingest_events_total",
			Help: "Events of MQTT reports published to the bus.",
		}),
		mRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_mqtt_ingest_retries_total",
			Help: "Publications to the bus retried after a failure or back-pressure.",
		}),
	}
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{s.mMessages, s.mEvents, s.mRetries} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("cannot register mqtt ingest metrics: %w", err)
			}
		}
	}
	po := paho.NewClientOptions().
		AddBroker(o.URL).
		SetClientID(o.ClientID).
		SetCleanSession(false).
		SetAutoAckDisabled(true).
		SetOrderMatters(true).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(30 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetDefaultPublishHandler(s.receive).
		SetOnConnectHandler(s.subscribe).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			s.log.Warn("connection to the MQTT broker lost", "broker", o.URL, "err", err)
		})
	if o.Username != "" {
		po.SetUsername(o.Username)
	}
	if o.Password != "" {
		po.SetPassword(o.Password)
	}
	if o.CAFile != "" || o.CertFile != "" || o.KeyFile != "" {
		tc, err := tlsConfig(o.CAFile, o.CertFile, o.KeyFile)
		if err != nil {
			return nil, err
		}
		po.SetTLSConfig(tc)
	}
	s.client = paho.NewClient(po)
	return s, nil
}

func tlsConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("cannot read mqtt ingest ca_file: %w", err)
		}
		tc.RootCAs = x509.NewCertPool()
		if !tc.RootCAs.AppendCertsFromPEM(pem) {
			return nil, vigil.Errorf(vigil.EINVALID, "mqtt ingest ca_file %s holds no PEM certificate", caFile)
		}
	}
	if (certFile == "") != (keyFile == "") {
		return nil, vigil.Errorf(vigil.EINVALID, "mqtt ingest: cert_file and key_file go together")
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("cannot load mqtt ingest client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// subscribe (re)subscribes after every connection; messages go to the
// default handler, receive.
func (s *Source) subscribe(c paho.Client) {
	s.log.Info("connected to the MQTT broker", "broker", s.o.URL, "client_id", s.o.ClientID)
	t := c.SubscribeMultiple(map[string]byte{ReportFilter: 1, ResultFilter: 1}, nil)
	go func() {
		if !t.WaitTimeout(30*time.Second) || t.Error() != nil {
			s.log.Error("cannot subscribe to the agent topics", "broker", s.o.URL, "err", t.Error())
			return
		}
		s.subOnce.Do(func() { close(s.subscribed) })
	}()
}

// receive runs on paho's router: it only queues, Run's loop handles.
func (s *Source) receive(_ paho.Client, m paho.Message) {
	select {
	case s.in <- m:
	case <-s.stop:
	}
}

// Run connects to the broker (retrying, with a warning each time, until it
// can; paho reconnects after a lost connection) and ingests until ctx ends;
// it returns nil then. Call it once.
func (s *Source) Run(ctx context.Context) error {
	defer close(s.stop)
	wait := 2 * time.Second
	for {
		t := s.client.Connect()
		select {
		case <-t.Done():
		case <-ctx.Done():
			s.client.Disconnect(0)
			return nil
		}
		if t.Error() == nil {
			break
		}
		s.log.Warn("cannot connect to the MQTT broker; retrying", "broker", s.o.URL, "client_id", s.o.ClientID, "err", t.Error(), "in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(wait*2, 30*time.Second)
	}
	defer s.client.Disconnect(250)
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-s.in:
			if s.handle(ctx, m) {
				m.Ack()
			}
		}
	}
}

// Subscribed is closed once the first subscription to the agent topics
// was acknowledged by the broker.
func (s *Source) Subscribed() <-chan struct{} { return s.subscribed }

// Connected reports whether the client is connected now.
func (s *Source) Connected() bool { return s.client.IsConnectionOpen() }

// Stats returns the counters.
func (s *Source) Stats() Stats {
	return Stats{
		Reports: s.reports.Load(), Events: s.events.Load(), Bad: s.bad.Load(),
		Results: s.results.Load(), Retries: s.retries.Load(),
	}
}

// handle processes one message and says whether to acknowledge it: false
// only when ctx ended before its events were published.
func (s *Source) handle(ctx context.Context, m paho.Message) bool {
	dev, channel, ok := splitTopic(m.Topic())
	if !ok {
		s.badPayload("unknown", m.Topic(), errors.New("topic is not vigil/<device>/report or vigil/<device>/result"))
		return true
	}
	switch channel {
	case "report":
		return s.report(ctx, dev, m)
	case "result":
		s.result(ctx, dev, m)
		return true
	}
	s.badPayload("unknown", m.Topic(), fmt.Errorf("unexpected channel %q", channel))
	return true
}

func (s *Source) report(ctx context.Context, dev string, m paho.Message) bool {
	rep, err := DecodeReport(m.Payload(), s.o.MaxPayload)
	if err != nil {
		s.badPayload("report", m.Topic(), err)
		return true
	}
	if rep.DeviceID != "" && rep.DeviceID != dev {
		s.log.Warn("report names another device than its topic; using the topic's", "topic", m.Topic(), "device_id", rep.DeviceID)
	}
	rep.DeviceID = dev
	events, probs := agent.ConvertWith(rep, agent.Options{Received: s.o.Clock.Now(), MaxFuture: max(s.o.MaxFuture, 0)})
	// The broker authenticated the device for its own topic.
	prov := vigil.NewProvenance(vigil.ProvenanceMQTT, dev)
	for i := range events {
		events[i].Provenance = prov
	}
	s.o.Redactor.Events(events)
	if len(probs) > 0 {
		s.log.Debug("report parts rejected", "topic", m.Topic(), "problems", len(probs), "first", probs[0].Error())
	}
	if len(events) == 0 {
		if len(probs) > 0 {
			s.badPayload("report", m.Topic(), probs[0])
		}
		return true
	}
	wait := s.o.RetryInterval
	for {
		err := s.o.Publisher.PublishEvents(ctx, events)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return false // not acknowledged: the broker delivers it again
		}
		s.retries.Add(1)
		s.mRetries.Inc()
		s.log.Debug("cannot publish report events; retrying", "topic", m.Topic(), "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Second)
	}
	s.reports.Add(1)
	s.events.Add(uint64(len(events)))
	s.mMessages.WithLabelValues("report", "ok").Inc()
	s.mEvents.Add(float64(len(events)))
	return true
}

func (s *Source) result(ctx context.Context, dev string, m paho.Message) {
	var r command.Result
	if err := json.Unmarshal(m.Payload(), &r); err != nil {
		s.badPayload("result", m.Topic(), fmt.Errorf("cannot decode command result: %w", err))
		return
	}
	switch r.Status {
	case command.StatusSucceeded, command.StatusFailed, command.StatusRefused:
	default:
		s.badPayload("result", m.Topic(), fmt.Errorf("status %q: want succeeded, failed or refused", r.Status))
		return
	}
	if r.DeviceID != "" && r.DeviceID != dev {
		s.log.Warn("result names another device than its topic; using the topic's", "topic", m.Topic(), "device_id", r.DeviceID)
	}
	r.DeviceID = dev
	s.results.Add(1)
	s.mMessages.WithLabelValues("result", "ok").Inc()
	if s.o.OnResult != nil {
		s.o.OnResult(ctx, r)
	}
}

func (s *Source) badPayload(kind, topic string, err error) {
	s.bad.Add(1)
	s.mMessages.WithLabelValues(kind, "bad").Inc()
	s.log.Warn("unreadable MQTT message", "topic", topic, "err", err)
}

// SendCommand publishes a signed command (the JSON of a command.Signed)
// to vigil/<deviceID>/cmd at QoS 1 and returns once the broker took it.
func (s *Source) SendCommand(deviceID string, signed []byte) error {
	if !validDevice(deviceID) {
		return vigil.Errorf(vigil.EINVALID, "cannot send command: device id %q cannot be a topic level", deviceID)
	}
	t := s.client.Publish(Topic(deviceID, "cmd"), 1, false, signed)
	if !t.WaitTimeout(30 * time.Second) {
		return fmt.Errorf("cannot send command to %s: broker did not acknowledge in 30s", deviceID)
	}
	if err := t.Error(); err != nil {
		return fmt.Errorf("cannot send command to %s: %w", deviceID, err)
	}
	return nil
}

// Topic returns a device's topic of a channel (report, cmd or result), as
// the agent names it.
func Topic(deviceID, channel string) string { return "vigil/" + deviceID + "/" + channel }

func splitTopic(topic string) (dev, channel string, ok bool) {
	parts := strings.Split(topic, "/")
	if len(parts) != 3 || parts[0] != "vigil" || !validDevice(parts[1]) {
		return "", "", false
	}
	return parts[1], parts[2], true
}

func validDevice(id string) bool {
	return id != "" && len(id) <= 128 && !strings.ContainsAny(id, "/+#\x00")
}

// DecodeReport reads an MQTT report payload: gzip-compressed or not (the
// agent compresses), JSON or XML by its first non-blank byte, at most limit
// bytes after decompression.
func DecodeReport(payload []byte, limit int64) (*wire.Report, error) {
	if len(payload) >= 2 && payload[0] == 0x1f && payload[1] == 0x8b {
		zr, err := gzip.NewReader(bytes.NewReader(payload))
		if err != nil {
			return nil, fmt.Errorf("cannot decompress report: %w", err)
		}
		data, err := wire.ReadLimited(zr, limit)
		if err != nil {
			return nil, fmt.Errorf("cannot decompress report: %w", err)
		}
		payload = data
	} else if int64(len(payload)) > limit {
		return nil, fmt.Errorf("%w of %d bytes", wire.ErrTooLarge, limit)
	}
	body := bytes.TrimLeft(payload, " \t\r\n\ufeff")
	if len(body) == 0 {
		return nil, errors.New("cannot decode report: empty payload")
	}
	switch body[0] {
	case '{':
		return wire.DecodeReportBytes(wire.FormatJSON, body)
	case '<':
		return wire.DecodeReportBytes(wire.FormatXML, body)
	}
	return nil, fmt.Errorf("cannot decode report: payload starts with %q, neither JSON nor XML", body[0])
}

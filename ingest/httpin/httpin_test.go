package httpin

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/bus"
	"github.com/vigil-iot/vigil/ingest/bulk"
	"github.com/vigil-iot/vigil/wire"
)

// recorder is a Publisher that keeps what it is given, or fails with err.
type recorder struct {
	mu     sync.Mutex
	events []vigil.Event
	calls  int
	err    error
}

func (p *recorder) PublishEvents(_ context.Context, events []vigil.Event) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.err != nil {
		return p.err
	}
	p.events = append(p.events, events...)
	return nil
}

type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

var now = time.Date(2026, 11, 22, 3, 15, 2, 0, time.UTC)

type env struct {
	t   *testing.T
	pub *recorder
	reg *prometheus.Registry
	mux *http.ServeMux
}

func newEnv(t *testing.T, opts Options) *env {
	e := &env{t: t, pub: &recorder{}, reg: prometheus.NewRegistry(), mux: http.NewServeMux()}
	opts.Publisher = e.pub
	opts.Clock = fixedClock(now)
	opts.Registerer = e.reg
	h, err := NewHandler(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.Register(e.mux)
	return e
}

type answer struct {
	code int
	hdr  http.Header
	resp wire.Response
	raw  string
}

func (e *env) post(ctx context.Context, path, ct string, body []byte, hdr ...string) answer {
	e.t.Helper()
	req := httptest.NewRequestWithContext(ctx, "POST", path, bytes.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, req)
	a := answer{code: rec.Code, hdr: rec.Header(), raw: rec.Body.String()}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		e.t.Fatalf("answer Content-Type %q: %s", ct, a.raw)
	}
	dec := json.NewDecoder(rec.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a.resp); err != nil {
		e.t.Fatalf("answer is not a wire.Response: %v: %s", err, a.raw)
	}
	return a
}

// counter returns the value of a counter with the labels, 0 when absent.
func (e *env) counter(name string, labels ...string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func example(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../wire/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReportJSONAndXML(t *testing.T) {
	for _, c := range []struct{ file, ct string }{
		{"report.json", "application/json"},
		{"report.xml", "application/xml; charset=utf-8"},
	} {
		e := newEnv(t, Options{})
		a := e.post(context.Background(), PathReport, c.ct, example(t, c.file))
		if a.code != 200 || a.resp.Accepted != 6 || len(a.resp.Rejected) != 0 || a.resp.Error != nil {
			t.Fatalf("%s: %d %s", c.file, a.code, a.raw)
		}
		if len(e.pub.events) != 6 || e.pub.calls != 1 {
			t.Fatalf("%s: published %d events in %d calls", c.file, len(e.pub.events), e.pub.calls)
		}
		for _, ev := range e.pub.events {
			if !ev.Received.Equal(now) || ev.DeviceID != "cam-0042" || ev.Source != "agent" {
				t.Fatalf("%s: event %+v", c.file, ev)
			}
		}
		if got := e.counter("vigil_ingest_events_total", "source", "agent"); got != 6 {
			t.Fatalf("vigil_ingest_events_total = %v", got)
		}
	}
}

func TestReportDeviceFromCredentials(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := WithDevice(context.Background(), "cam-0099")
	a := e.post(ctx, PathReport, "application/json", example(t, "report.json"))
	if a.code != 200 {
		t.Fatalf("%d %s", a.code, a.raw)
	}
	for _, ev := range e.pub.events {
		if ev.DeviceID != "cam-0099" {
			t.Fatalf("device id %q, want the authenticated cam-0099", ev.DeviceID)
		}
	}
	// The credentials' identity also fills a report without device_id.
	body := []byte(`{"version":"1","time":"2026-11-22T03:15:00Z","health":{"cpu_pct":1,"memory_pct":2,"disk_pct":3}}`)
	if a := e.post(ctx, PathReport, "application/json", body); a.code != 200 || a.resp.Accepted != 1 {
		t.Fatalf("%d %s", a.code, a.raw)
	}
}

func TestReportPartlyRejected(t *testing.T) {
	e := newEnv(t, Options{})
	var r wire.Report
	if err := json.Unmarshal(example(t, "report.json"), &r); err != nil {
		t.Fatal(err)
	}
	r.Events[1].Kind = ""
	r.Health.CPU = 300
	var b bytes.Buffer
	if err := wire.EncodeReport(&b, "application/json", &r); err != nil {
		t.Fatal(err)
	}
	a := e.post(context.Background(), PathReport, "application/json", b.Bytes())
	if a.code != 200 || a.resp.Accepted != 5 || a.resp.RejectedCount != 2 || len(a.resp.Rejected) != 2 {
		t.Fatalf("%d %s", a.code, a.raw)
	}
	r0, r1 := a.resp.Rejected[0], a.resp.Rejected[1]
	if r0.Field != "health.cpu_pct" || r0.Index != nil || r0.Error != "must be 0..100" ||
		r1.Field != "events[1].kind" || r1.Index == nil || *r1.Index != 1 || r1.Error != "missing" {
		t.Fatalf("rejections: %s", a.raw)
	}
	for _, ev := range e.pub.events {
		if ev.Kind == "process" {
			t.Fatal("the rejected event was published")
		}
	}
	if got := e.counter("vigil_ingest_rejected_total", "source", "agent", "reason", "invalid"); got != 2 {
		t.Fatalf("rejected = %v", got)
	}
}

func TestReportRefused(t *testing.T) {
	e := newEnv(t, Options{MaxReportBytes: 8 << 10})
	f := func(name, ct string, body []byte, wantCode int, wantErrCode, wantMsg string, hdr ...string) {
		t.Helper()
		a := e.post(context.Background(), PathReport, ct, body, hdr...)
		if a.code != wantCode || a.resp.Error == nil || a.resp.Error.Code != wantErrCode || !strings.Contains(a.resp.Error.Message, wantMsg) || a.resp.Accepted != 0 {
			t.Fatalf("%s: %d %s\nwant %d %s %q", name, a.code, a.raw, wantCode, wantErrCode, wantMsg)
		}
	}
	f("text/plain", "text/plain", []byte(`{}`), 415, "unsupported_media_type", "unsupported content type")
	f("no content type", "", []byte(`{}`), 415, "unsupported_media_type", "unsupported content type")
	f("brotli", "application/json", []byte(`{}`), 415, "unsupported_media_type", `content encoding "br"`, "Content-Encoding", "br")
	f("too large", "application/json", bytes.Repeat([]byte(" "), 9<<10), 413, "too_large", "larger than the limit of 8192 bytes")
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	zw.Write(bytes.Repeat([]byte(" "), 1<<20))
	zw.Close()
	f("gzip bomb", "application/json", bomb.Bytes(), 413, "too_large", "larger than the limit", "Content-Encoding", "gzip")
	f("bad gzip", "application/json", []byte("nope"), 400, "invalid", "cannot read gzip body", "Content-Encoding", "gzip")
	f("doctype", "application/xml", []byte(`<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "b">]><report version="1"/>`), 400, "invalid", "DOCTYPE and ENTITY declarations are not allowed")
	f("syntax", "application/json", []byte(`{"version":"1",`), 400, "invalid", "unexpected end of JSON input")
	f("envelope", "application/json", []byte(`{"version":"1","time":"2026-11-22T03:15:00Z","health":{"cpu_pct":1,"memory_pct":2,"disk_pct":3}}`), 400, "invalid", "nothing accepted: device_id: missing")
	if e.pub.calls != 0 {
		t.Fatalf("publisher called %d times for refused reports", e.pub.calls)
	}
	a := e.post(context.Background(), PathReport, "application/json", []byte(`{"version":"1","device_id":"d","health":{"cpu_pct":"x"}}`))
	if len(a.resp.Rejected) != 1 || a.resp.Rejected[0].Field != "health.cpu_pct" || a.resp.Rejected[0].Offset == nil {
		t.Fatalf("decode error rejection: %s", a.raw)
	}
	if got := e.counter("vigil_ingest_rejected_total", "source", "agent", "reason", "too_large"); got != 2 {
		t.Fatalf("too_large = %v", got)
	}
	if got := e.counter("vigil_ingest_rejected_total", "source", "agent", "reason", "media_type"); got != 3 {
		t.Fatalf("media_type = %v", got)
	}
}

func TestReportGzip(t *testing.T) {
	e := newEnv(t, Options{})
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(example(t, "report.xml"))
	zw.Close()
	a := e.post(context.Background(), PathReport, "text/xml", b.Bytes(), "Content-Encoding", "gzip")
	if a.code != 200 || a.resp.Accepted != 6 {
		t.Fatalf("%d %s", a.code, a.raw)
	}
}

func TestBackpressure(t *testing.T) {
	e := newEnv(t, Options{})
	e.pub.err = fmt.Errorf("publish: %w", bus.ErrBackpressure)
	a := e.post(context.Background(), PathReport, "application/json", example(t, "report.json"))
	if a.code != 429 || a.hdr.Get("Retry-After") != "1" || a.resp.Error.Code != "busy" || a.resp.Accepted != 0 {
		t.Fatalf("%d %v %s", a.code, a.hdr, a.raw)
	}
	a = e.post(context.Background(), PathEvents, "application/x-ndjson", []byte(`{"time":"2026-11-22T03:14:00Z","kind":"auth"}`))
	if a.code != 429 || a.hdr.Get("Retry-After") != "1" {
		t.Fatalf("%d %v %s", a.code, a.hdr, a.raw)
	}
	if got := e.counter("vigil_ingest_rejected_total", "reason", "backpressure", "source", "agent"); got != 6 {
		t.Fatalf("backpressure = %v", got)
	}
	if got := e.counter("vigil_ingest_events_total", "source", "agent"); got != 0 {
		t.Fatalf("accepted = %v", got)
	}

	e.pub.err = errors.New("nats: connection closed")
	a = e.post(context.Background(), PathEvents, "application/x-ndjson", []byte(`{"time":"2026-11-22T03:14:00Z","kind":"auth"}`))
	if a.code != 500 || a.resp.Error.Code != "internal" || strings.Contains(a.raw, "nats") {
		t.Fatalf("%d %s", a.code, a.raw)
	}
}

func TestBulk(t *testing.T) {
	e := newEnv(t, Options{})
	body := "{\"time\":\"2026-11-22T03:14:00Z\",\"device_id\":\"cam-1\",\"kind\":\"auth\",\"user.name\":\"root\"}\n" +
		"{\"time\":\"yesterday\",\"kind\":\"auth\"}\n" +
		"\n" +
		"{\"time\":\"2026-11-22T03:14:02Z\",\"kind\":\"process\"}\n"
	a := e.post(context.Background(), PathEvents, "application/x-ndjson", []byte(body))
	if a.code != 200 || a.resp.Accepted != 2 || a.resp.RejectedCount != 1 || len(a.resp.Rejected) != 1 {
		t.Fatalf("%d %s", a.code, a.raw)
	}
	rj := a.resp.Rejected[0]
	if *rj.Index != 1 || rj.Line != 2 || *rj.Offset != 85 || rj.Field != "time" || rj.Error != `cannot parse "yesterday": want an RFC 3339 time` {
		t.Fatalf("rejection: %s", a.raw)
	}
	if len(e.pub.events) != 2 || e.pub.events[0].Fields["user.name"] != "root" || !e.pub.events[1].Received.Equal(now) {
		t.Fatalf("published: %+v", e.pub.events)
	}
	if got := e.counter("vigil_ingest_events_total", "source", "bulk"); got != 2 {
		t.Fatalf("accepted = %v", got)
	}

	// A JSON array, with the device identity of the caller.
	e.pub.events = nil
	ctx := WithDevice(context.Background(), "gw-7")
	a = e.post(ctx, PathEvents, "application/json", []byte(` [{"time":"2026-11-22T03:14:00Z","device_id":"cam-1","kind":"auth"}]`))
	if a.code != 200 || a.resp.Accepted != 1 || e.pub.events[0].DeviceID != "gw-7" {
		t.Fatalf("%d %s %+v", a.code, a.raw, e.pub.events)
	}

	// Nothing valid: 400, nothing published.
	calls := e.pub.calls
	a = e.post(context.Background(), PathEvents, "application/x-ndjson", []byte("{\"kind\":\"auth\"}\n{}\n"))
	if a.code != 400 || a.resp.Accepted != 0 || a.resp.RejectedCount != 2 || a.resp.Error.Message != "nothing accepted: time: missing" || e.pub.calls != calls {
		t.Fatalf("%d %s", a.code, a.raw)
	}
	for _, c := range []struct {
		ct, body string
		code     int
		msg      string
	}{
		{"application/x-ndjson", "\n \n", 400, "no events in body"},
		{"application/json", "[1,", 400, "invalid JSON"},
		{"application/xml", "{}", 415, "unsupported content type"},
	} {
		a = e.post(context.Background(), PathEvents, c.ct, []byte(c.body))
		if a.code != c.code || !strings.Contains(a.resp.Error.Message, c.msg) {
			t.Fatalf("%q: %d %s", c.body, a.code, a.raw)
		}
	}
}

func TestBulkLimits(t *testing.T) {
	e := newEnv(t, Options{MaxBulkBytes: 1000})
	line := `{"time":"2026-11-22T03:14:00Z","kind":"auth"}` + "\n"
	a := e.post(context.Background(), PathEvents, "application/x-ndjson", []byte(strings.Repeat(line, 30)))
	if a.code != 413 || a.resp.Error.Code != "too_large" {
		t.Fatalf("%d %s", a.code, a.raw)
	}
	// Many bad lines: the list is capped, the count is not.
	e = newEnv(t, Options{})
	a = e.post(context.Background(), PathEvents, "application/x-ndjson", []byte(strings.Repeat("{}\n", wire.MaxRejections+5)))
	if a.code != 400 || a.resp.RejectedCount != wire.MaxRejections+5 || len(a.resp.Rejected) != bulk.DefaultMaxErrors {
		t.Fatalf("%d count %d listed %d", a.code, a.resp.RejectedCount, len(a.resp.Rejected))
	}
}

func TestSharedRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	for range 2 {
		if _, err := NewHandler(Options{Publisher: &recorder{}, Registerer: reg}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := NewHandler(Options{}); err == nil {
		t.Fatal("no publisher: want an error")
	}
}

type nopPublisher struct{}

func (nopPublisher) PublishEvents(context.Context, []vigil.Event) error { return nil }

func BenchmarkBulkHandler(b *testing.B) {
	h, err := NewHandler(Options{Publisher: nopPublisher{}})
	if err != nil {
		b.Fatal(err)
	}
	var body strings.Builder
	const n = 10000
	for i := range n {
		fmt.Fprintf(&body, `{"time":"2026-11-22T03:14:%02dZ","device_id":"cam-%d","kind":"auth","action":"login","outcome":"failure","source.ip":"203.0.113.%d","user.name":"root"}`+"\n", i%60, i%500, i%250)
	}
	data := []byte(body.String())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", PathEvents, bytes.NewReader(data))
		req.Header.Set("Content-Type", "application/x-ndjson")
		rec := httptest.NewRecorder()
		h.Bulk().ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Body.String())
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
}

package httpin

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil/metrics"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/bus"
	"github.com/vigil-iot/vigil/ingest"
	"github.com/vigil-iot/vigil/ingest/agent"
	"github.com/vigil-iot/vigil/ingest/bulk"
	"github.com/vigil-iot/vigil/wire"
)

// Paths of the two endpoints.
const (
	PathReport = "/api/v1/agent/report"
	PathEvents = "/api/v1/events"
)

// Default body limits.
const (
	DefaultMaxReportBytes = 1 << 20
	DefaultMaxBulkBytes   = 16 << 20
)

// RetryAfter is the Retry-After value of a 429 answer, in seconds.
const RetryAfter = "1"

// Error codes of answers that vigil's codes do not cover.
const codeUnsupportedMediaType = "unsupported_media_type"

// Publisher takes accepted events; bus.Bus is one. PublishEvents returns
// bus.ErrBackpressure (possibly wrapped) when it cannot take more now, in
// which case none of the events was taken.
type Publisher interface {
	PublishEvents(ctx context.Context, events []vigil.Event) error
}

var _ Publisher = (bus.Bus)(nil)

// Options configures a Handler.
type Options struct {
	// Publisher receives the accepted events. Required.
	Publisher Publisher
	// Clock stamps Received (default vigil.SystemClock).
	Clock vigil.Clock
	// MaxReportBytes and MaxBulkBytes limit the (decompressed) body of a
	// report and of a bulk post (defaults DefaultMaxReportBytes and
	// DefaultMaxBulkBytes).
	MaxReportBytes int64
	MaxBulkBytes   int64
	// Logger receives the handler's logs (nil: none).
	Logger *slog.Logger
	// Registerer receives vigil_ingest_events_total{source} and
	// vigil_ingest_rejected_total{source,reason} (nil: not registered).
	Registerer prometheus.Registerer
	// MaxFuture is how far after the server's clock an event's time may be
	// (the clock skew allowed to sources; default ingest.DefaultMaxFuture,
	// negative: no bound). Later events are rejected one by one.
	MaxFuture time.Duration
	// Redactor removes credentials from event fields before they are
	// published (nil: the built-in rules, an ingest.Redactor{}).
	Redactor *ingest.Redactor
	// Identities says which devices have an enrolled identity: a caller
	// authenticated by an API token may not send events about those (nil:
	// no device has one).
	Identities Identities
	// MaxRejections is how many rejected items an answer lists (default
	// bulk.DefaultMaxErrors); all are counted.
	MaxRejections int
}

// Identities tells which devices have an enrolled identity (a client
// certificate from enrollment). Such a device speaks for itself with its
// certificate, sensors speak about it with theirs, and nobody else may:
// the handlers refuse events about it from a caller holding an API token.
type Identities interface {
	// Enrolled reports whether the device has an enrolled identity. An
	// error makes the handler answer 500 (the caller retries).
	Enrolled(ctx context.Context, deviceID string) (bool, error)
}

// Handler serves the ingest endpoints. It is safe for concurrent use.
type Handler struct {
	pub       Publisher
	clock     vigil.Clock
	maxReport int64
	maxBulk   int64
	maxFuture time.Duration // <= 0: no bound
	redact    *ingest.Redactor
	ids       Identities
	maxRej    int
	log       *slog.Logger
	accepted  *prometheus.CounterVec
	rejected  *prometheus.CounterVec
}

// Reasons of vigil_ingest_rejected_total.
const (
	reasonInvalid      = "invalid"      // an item failed validation
	reasonDecode       = "decode"       // the body is not a report / not JSON
	reasonTooLarge     = "too_large"    // the body is over its limit
	reasonMediaType    = "media_type"   // unsupported content type or encoding
	reasonBackpressure = "backpressure" // the bus pushed back
	reasonPublish      = "publish"      // the bus failed
	reasonForbidden    = "forbidden"    // a token spoke for a device it may not
)

// NewHandler returns a Handler.
func NewHandler(opts Options) (*Handler, error) {
	if opts.Publisher == nil {
		return nil, errors.New("httpin: Options.Publisher is required")
	}
	h := &Handler{
		pub:       opts.Publisher,
		clock:     opts.Clock,
		maxReport: opts.MaxReportBytes,
		maxBulk:   opts.MaxBulkBytes,
		log:       opts.Logger,
		maxFuture: opts.MaxFuture,
		redact:    opts.Redactor,
		ids:       opts.Identities,
		maxRej:    opts.MaxRejections,
	}
	if h.maxFuture == 0 {
		h.maxFuture = ingest.DefaultMaxFuture
	}
	if h.redact == nil {
		h.redact = &ingest.Redactor{}
	}
	if h.maxRej <= 0 {
		h.maxRej = bulk.DefaultMaxErrors
	}
	if h.clock == nil {
		h.clock = vigil.SystemClock{}
	}
	if h.maxReport <= 0 {
		h.maxReport = DefaultMaxReportBytes
	}
	if h.maxBulk <= 0 {
		h.maxBulk = DefaultMaxBulkBytes
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	var err error
	h.accepted, err = counterVec(opts.Registerer, prometheus.CounterOpts{
		Name: "vigil_ingest_events_total",
		Help: "Events accepted by the ingest API and published on the bus, by source.",
	}, "source")
	if err != nil {
		return nil, err
	}
	h.rejected, err = counterVec(opts.Registerer, prometheus.CounterOpts{
		Name: "vigil_ingest_rejected_total",
		Help: "Items refused by the ingest API, by source and reason (invalid, decode, too_large, media_type, backpressure, publish, forbidden).",
	}, "source", "reason")
	if err != nil {
		return nil, err
	}
	return h, nil
}

// counterVec registers a counter vector, or returns the one registered
// under the same name (two handlers on one registry share it).
func counterVec(reg prometheus.Registerer, opts prometheus.CounterOpts, labels ...string) (*prometheus.CounterVec, error) {
	c, err := metrics.Register(reg, prometheus.NewCounterVec(opts, labels))
	if err != nil {
		return nil, fmt.Errorf("cannot register %s: %w", opts.Name, err)
	}
	return c, nil
}

type deviceKey struct{}

// WithDevice returns a context that tells the handlers which device is
// calling, as authenticated by the web layer. The id replaces the device
// id of the report and of every bulk event.
func WithDevice(ctx context.Context, deviceID string) context.Context {
	return context.WithValue(ctx, deviceKey{}, deviceID)
}

// DeviceFrom returns the device id WithDevice stored.
func DeviceFrom(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(deviceKey{}).(string)
	return id, ok && id != ""
}

type observerKey struct{}

// FieldObserver is the event field that names the sensor which observed
// an event (ECS observer.id), set from the sensor's certificate.
const FieldObserver = "observer.id"

// WithObserver returns a context that tells the bulk handler which sensor
// is calling, as authenticated by its certificate. Every bulk event gets
// the sensor's id in FieldObserver (whatever the body said); the events
// keep their own device ids, the devices the sensor saw.
func WithObserver(ctx context.Context, sensorID string) context.Context {
	return context.WithValue(ctx, observerKey{}, sensorID)
}

// ObserverFrom returns the sensor id WithObserver stored.
func ObserverFrom(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(observerKey{}).(string)
	return id, ok && id != ""
}

// caller is who sends a request, as the web layer or enroll.Front
// authenticated it.
type caller struct {
	provenance string      // vigil.Event.Provenance of what it sends
	token      *auth.Token // the API token, when it holds one
}

// callerOf returns who sends r: a device or a sensor by its certificate,
// else the holder of an API token, else nobody known (the handler used
// without authentication, as in tests: provenance "").
func callerOf(r *http.Request) caller {
	ctx := r.Context()
	if dev, ok := DeviceFrom(ctx); ok {
		return caller{provenance: vigil.NewProvenance(vigil.ProvenanceDevice, dev)}
	}
	if obs, ok := ObserverFrom(ctx); ok {
		return caller{provenance: vigil.NewProvenance(vigil.ProvenanceSensor, obs)}
	}
	if tok, ok := auth.FromContext(ctx); ok {
		return caller{provenance: vigil.NewProvenance(vigil.ProvenanceToken, tok.Name), token: &tok}
	}
	return caller{}
}

// errIdentityLookup marks a failed Identities lookup: the request is
// answered 500.
var errIdentityLookup = errors.New("cannot check the device's identity")

// mayTokenPostFor returns why the token of c may not send events about
// deviceID ("" when it may), or errIdentityLookup.
func (h *Handler) mayTokenPostFor(ctx context.Context, c caller, deviceID string) (string, error) {
	if c.token == nil {
		return "", nil
	}
	if !c.token.MayPostFor(deviceID) {
		if deviceID == "" {
			return fmt.Sprintf("token %q is bound to devices: every event must name one of them", c.token.Name), nil
		}
		return fmt.Sprintf("token %q may not send events for device %q: it is bound to other devices", c.token.Name, deviceID), nil
	}
	if h.ids == nil || deviceID == "" {
		return "", nil
	}
	enrolled, err := h.ids.Enrolled(ctx, deviceID)
	if err != nil {
		h.log.Error("cannot check device identity", "device_id", deviceID, "err", err)
		return "", errIdentityLookup
	}
	if enrolled {
		return fmt.Sprintf("device %q has an enrolled identity: only its own certificate (or an enrolled sensor) may send its events, not an API token", deviceID), nil
	}
	return "", nil
}

// stamp sets the provenance of every accepted event and redacts their
// credentials.
func (h *Handler) stamp(events []vigil.Event, c caller) {
	for i := range events {
		events[i].Provenance = c.provenance
	}
	if n := h.redact.Events(events); n > 0 {
		h.log.Debug("credentials redacted from events", "events", n)
	}
}

// Report returns the handler of POST /api/v1/agent/report.
func (h *Handler) Report() http.Handler { return http.HandlerFunc(h.serveReport) }

// Bulk returns the handler of POST /api/v1/events.
func (h *Handler) Bulk() http.Handler { return http.HandlerFunc(h.serveBulk) }

// Register adds both endpoints to mux, for use without the web layer.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle("POST "+PathReport, h.Report())
	mux.Handle("POST "+PathEvents, h.Bulk())
}

func (h *Handler) serveReport(w http.ResponseWriter, r *http.Request) {
	const source = agent.Source
	format, err := wire.ParseContentType(r.Header.Get("Content-Type"))
	if err != nil {
		h.fail(w, source, reasonMediaType, http.StatusUnsupportedMediaType, codeUnsupportedMediaType, err.Error())
		return
	}
	data, ok := h.readBody(w, r, source, h.maxReport)
	if !ok {
		return
	}
	rep, err := wire.DecodeReportBytes(format, data)
	if err != nil {
		resp := wire.Response{RejectedCount: 1, Error: &wire.ErrorDetail{Code: vigil.EINVALID, Message: err.Error()}}
		var de *wire.DecodeError
		if errors.As(err, &de) {
			resp.Rejected = []wire.Rejection{{Field: de.Path, Error: de.Err.Error()}}
			if de.Offset >= 0 {
				resp.Rejected[0].Offset = &de.Offset
			}
			resp.Rejected[0].Line = de.Line
		}
		h.rejected.WithLabelValues(source, reasonDecode).Inc()
		h.log.Debug("report rejected", "err", err)
		writeJSON(w, http.StatusBadRequest, resp)
		return
	}
	if dev, ok := DeviceFrom(r.Context()); ok {
		if rep.DeviceID != "" && rep.DeviceID != dev {
			h.log.Warn("report names another device than its credentials; using the credentials'", "device_id", rep.DeviceID, "authenticated", dev)
		}
		rep.DeviceID = dev
	}
	c := callerOf(r)
	if why, err := h.mayTokenPostFor(r.Context(), c, rep.DeviceID); err != nil {
		h.fail(w, source, reasonPublish, http.StatusInternalServerError, vigil.EINTERNAL, "internal error: "+err.Error()+", retry later")
		return
	} else if why != "" {
		h.rejected.WithLabelValues(source, reasonForbidden).Inc()
		h.log.Info("report refused", "device_id", rep.DeviceID, "reason", why)
		writeJSON(w, http.StatusForbidden, wire.Response{RejectedCount: 1,
			Rejected: []wire.Rejection{{Field: "device_id", Error: why}},
			Error:    &wire.ErrorDetail{Code: vigil.EFORBIDDEN, Message: why}})
		return
	}
	events, probs := agent.ConvertWith(rep, agent.Options{Received: h.clock.Now(), MaxFuture: h.maxFuture})
	h.stamp(events, c)
	resp := wire.Response{}
	for _, p := range probs {
		if len(resp.Rejected) == h.maxRej {
			break
		}
		rj := wire.Rejection{Field: p.Path, Error: p.Message}
		if p.Index >= 0 {
			rj.Index = &p.Index
		}
		resp.Rejected = append(resp.Rejected, rj)
	}
	resp.RejectedCount = rejectedItems(probs)
	if resp.RejectedCount > 0 {
		h.rejected.WithLabelValues(source, reasonInvalid).Add(float64(resp.RejectedCount))
		h.log.Debug("report parts rejected", "device_id", rep.DeviceID, "problems", len(probs), "first", probs[0].Error())
	}
	h.publish(w, r, source, events, resp)
}

// rejectedItems counts the dropped units of a report: each list item
// (event, listener, interface) once, each section once.
func rejectedItems(probs []wire.Problem) int {
	seen := map[string]bool{}
	for _, p := range probs {
		key := p.Path
		if p.Index >= 0 {
			if i := strings.IndexByte(key, ']'); i >= 0 {
				key = key[:i]
			}
		} else if i := strings.IndexAny(key, ".["); i >= 0 {
			key = key[:i]
		}
		switch key {
		case "version", "device_id", "time", "agent":
			key = "report"
		}
		seen[key] = true
	}
	if seen["report"] {
		return 1 // the whole report
	}
	return len(seen)
}

// bulkTypes are the content types of NDJSON.
var bulkTypes = map[string]bool{
	"application/x-ndjson": true, "application/ndjson": true, "application/jsonl": true,
	"application/x-jsonlines": true, "application/jsonlines": true, "application/json": true,
}

func (h *Handler) serveBulk(w http.ResponseWriter, r *http.Request) {
	const source = bulk.Source
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || !bulkTypes[mt] {
		h.fail(w, source, reasonMediaType, http.StatusUnsupportedMediaType, codeUnsupportedMediaType,
			fmt.Sprintf("unsupported content type %q: want application/x-ndjson (or application/json)", ct))
		return
	}
	data, ok := h.readBody(w, r, source, h.maxBulk)
	if !ok {
		return
	}
	c := callerOf(r)
	dev, byDevice := DeviceFrom(r.Context())
	// Why a token may not speak for a device, per device of the body.
	verdicts := map[string]string{}
	var lookupErr error
	opts := bulk.Options{Received: h.clock.Now(), MaxErrors: h.maxRej}
	if h.maxFuture > 0 {
		opts.MaxFuture = h.maxFuture
	}
	if c.token != nil {
		opts.Check = func(e *vigil.Event) (string, error) {
			why, seen := verdicts[e.DeviceID]
			if !seen {
				var err error
				if why, err = h.mayTokenPostFor(r.Context(), c, e.DeviceID); err != nil {
					lookupErr = err
					return "device_id", err
				}
				if len(verdicts) < 10000 {
					verdicts[e.DeviceID] = why
				}
			}
			if why != "" {
				return "device_id", errors.New(why)
			}
			return "", nil
		}
	}
	var res bulk.Result
	if trimmed := bytes.TrimLeft(data, " \t\r\n"); mt == "application/json" && len(trimmed) > 0 && trimmed[0] == '[' {
		res = bulk.DecodeJSONArray(data, opts)
	} else {
		res = bulk.DecodeLines(data, opts)
	}
	events, errs := res.Events, res.Errors
	if lookupErr != nil {
		h.fail(w, source, reasonPublish, http.StatusInternalServerError, vigil.EINTERNAL, "internal error: "+lookupErr.Error()+", retry later")
		return
	}
	if len(events) == 0 && res.Rejected == 0 {
		h.fail(w, source, reasonDecode, http.StatusBadRequest, vigil.EINVALID, "no events in body")
		return
	}
	if res.Rejected == 1 && len(errs) == 1 && errs[0].Index < 0 {
		h.fail(w, source, reasonDecode, http.StatusBadRequest, vigil.EINVALID, errs[0].Error())
		return
	}
	if byDevice {
		for i := range events {
			events[i].DeviceID = dev
		}
	}
	if obs, ok := ObserverFrom(r.Context()); ok {
		for i := range events {
			if events[i].Fields == nil {
				events[i].Fields = map[string]any{}
			}
			events[i].Fields[FieldObserver] = obs
		}
	}
	h.stamp(events, c)
	resp := wire.Response{RejectedCount: res.Rejected}
	for _, e := range errs {
		if len(resp.Rejected) == h.maxRej {
			break
		}
		rj := wire.Rejection{Index: &e.Index, Line: e.Line, Field: e.Field, Error: e.Msg}
		if e.Offset >= 0 {
			rj.Offset = &e.Offset
		}
		resp.Rejected = append(resp.Rejected, rj)
	}
	if res.Rejected > 0 {
		h.rejected.WithLabelValues(source, reasonInvalid).Add(float64(res.Rejected))
		h.log.Debug("bulk items rejected", "rejected", res.Rejected, "accepted", len(events), "first", errs[0].Error())
	}
	h.publish(w, r, source, events, resp)
}

// publish publishes the events and writes the answer.
func (h *Handler) publish(w http.ResponseWriter, r *http.Request, source string, events []vigil.Event, resp wire.Response) {
	if len(events) > 0 {
		if err := h.pub.PublishEvents(r.Context(), events); err != nil {
			if errors.Is(err, bus.ErrBackpressure) {
				w.Header().Set("Retry-After", RetryAfter)
				h.rejected.WithLabelValues(source, reasonBackpressure).Add(float64(len(events)))
				resp.Error = &wire.ErrorDetail{Code: vigil.EBUSY, Message: "the event bus is full: retry later"}
				resp.RejectedCount += len(events)
				writeJSON(w, http.StatusTooManyRequests, resp)
				return
			}
			h.rejected.WithLabelValues(source, reasonPublish).Add(float64(len(events)))
			if r.Context().Err() == nil {
				h.log.Error("cannot publish events", "source", source, "events", len(events), "err", err)
			}
			resp.Error = &wire.ErrorDetail{Code: vigil.EINTERNAL, Message: "internal error: the events were not stored, retry later"}
			resp.RejectedCount += len(events)
			writeJSON(w, http.StatusInternalServerError, resp)
			return
		}
		h.accepted.WithLabelValues(source).Add(float64(len(events)))
	}
	resp.Accepted = len(events)
	status := http.StatusOK
	if resp.Accepted == 0 && resp.RejectedCount > 0 {
		status = http.StatusBadRequest
		resp.Error = &wire.ErrorDetail{Code: vigil.EINVALID, Message: "nothing accepted: " + firstRejection(resp.Rejected)}
	}
	writeJSON(w, status, resp)
}

func firstRejection(rs []wire.Rejection) string {
	if len(rs) == 0 {
		return "every item was rejected"
	}
	if rs[0].Field != "" {
		return rs[0].Field + ": " + rs[0].Error
	}
	return rs[0].Error
}

// readBody reads the body, decompressing gzip, within max bytes. On
// failure it has answered and returns false.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, source string, max int64) ([]byte, bool) {
	tooLarge := func() {
		h.fail(w, source, reasonTooLarge, http.StatusRequestEntityTooLarge, vigil.ETOOLARGE,
			fmt.Sprintf("body is larger than the limit of %d bytes", max))
	}
	if r.ContentLength > max {
		tooLarge()
		return nil, false
	}
	var body io.Reader = http.MaxBytesReader(w, r.Body, max)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			h.fail(w, source, reasonDecode, http.StatusBadRequest, vigil.EINVALID, "cannot read gzip body: "+err.Error())
			return nil, false
		}
		defer zr.Close()
		body = zr
	default:
		h.fail(w, source, reasonMediaType, http.StatusUnsupportedMediaType, codeUnsupportedMediaType,
			fmt.Sprintf("unsupported content encoding %q: want gzip or none", enc))
		return nil, false
	}
	data, err := wire.ReadLimited(body, max)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.Is(err, wire.ErrTooLarge) || errors.As(err, &mbe) {
			tooLarge()
		} else {
			h.fail(w, source, reasonDecode, http.StatusBadRequest, vigil.EINVALID, "cannot read body: "+err.Error())
		}
		return nil, false
	}
	return data, true
}

// fail answers a request refused as a whole.
func (h *Handler) fail(w http.ResponseWriter, source, reason string, status int, code, msg string) {
	h.rejected.WithLabelValues(source, reason).Inc()
	h.log.Debug("request refused", "source", source, "status", status, "err", msg)
	writeJSON(w, status, wire.Response{Error: &wire.ErrorDetail{Code: code, Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"accepted":0,"error":{"code":"internal","message":"internal error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

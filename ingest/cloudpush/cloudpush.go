package cloudpush

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/bus"
	"github.com/vigil-iot/vigil/ingest"
	"github.com/vigil-iot/vigil/metrics"
	"github.com/vigil-iot/vigil/wire"
)

// Path is the endpoint's path; PathFormat is the same with the format as
// its last element.
const (
	Path       = "/api/v1/ingest/cloud"
	PathFormat = Path + "/{format}"
)

// HeaderFormat names the format when the path does not.
const HeaderFormat = "X-Vigil-Format"

// Defaults of Options.
const (
	DefaultMaxBytes   = 16 << 20
	DefaultMaxRecords = 20000
)

// RetryAfter is the Retry-After value of a 429 answer, in seconds.
const RetryAfter = "1"

// Records yields the events of one body, one record at a time. Next
// returns io.EOF at the end; any other error is the error of one record,
// which is rejected, and reading goes on (a reader that cannot go on
// returns io.EOF next).
type Records interface {
	Next() (vigil.Event, error)
}

// Open returns the reader of a body in one format; name names the body in
// errors.
type Open func(body io.Reader, name string) Records

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
	// Formats are the readers by format name ("cloudtrail", "azure",
	// "gcp"). Required.
	Formats map[string]Open
	// Clock stamps Received (default vigil.SystemClock).
	Clock vigil.Clock
	// MaxBytes limits the decompressed body (default DefaultMaxBytes);
	// MaxRecords the records of one body (default DefaultMaxRecords).
	MaxBytes   int64
	MaxRecords int
	// MaxFuture is how far after the server's clock an event's time may be
	// (default ingest.DefaultMaxFuture; negative: no bound).
	MaxFuture time.Duration
	// Redactor removes credentials from event fields (nil: the built-in
	// rules).
	Redactor *ingest.Redactor
	// Logger receives the handler's logs (nil: none).
	Logger *slog.Logger
	// Registerer receives vigil_ingest_events_total{source} and
	// vigil_ingest_rejected_total{source,reason}, shared with the other
	// ingest endpoints (nil: not registered).
	Registerer prometheus.Registerer
}

// Handler serves the endpoint. It is safe for concurrent use.
type Handler struct {
	pub        Publisher
	formats    map[string]Open
	clock      vigil.Clock
	maxBytes   int64
	maxRecords int
	maxFuture  time.Duration
	redact     *ingest.Redactor
	log        *slog.Logger
	accepted   *prometheus.CounterVec
	rejected   *prometheus.CounterVec
}

// NewHandler returns a Handler.
func NewHandler(o Options) (*Handler, error) {
	if o.Publisher == nil || len(o.Formats) == 0 {
		return nil, errors.New("cloudpush: Options.Publisher and Options.Formats are required")
	}
	h := &Handler{pub: o.Publisher, formats: o.Formats, clock: o.Clock, maxBytes: o.MaxBytes, maxRecords: o.MaxRecords,
		maxFuture: o.MaxFuture, redact: o.Redactor, log: o.Logger}
	if h.clock == nil {
		h.clock = vigil.SystemClock{}
	}
	if h.maxBytes <= 0 {
		h.maxBytes = DefaultMaxBytes
	}
	if h.maxRecords <= 0 {
		h.maxRecords = DefaultMaxRecords
	}
	if h.maxFuture == 0 {
		h.maxFuture = ingest.DefaultMaxFuture
	}
	if h.redact == nil {
		h.redact = &ingest.Redactor{}
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if h.accepted, err = metrics.Register(o.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_ingest_events_total",
		Help: "Events accepted by the ingest API and published on the bus, by source.",
	}, []string{"source"})); err != nil {
		return nil, fmt.Errorf("cannot register vigil_ingest_events_total: %w", err)
	}
	if h.rejected, err = metrics.Register(o.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_ingest_rejected_total",
		Help: "Items refused by the ingest API, by source and reason (invalid, decode, too_large, media_type, backpressure, publish, forbidden).",
	}, []string{"source", "reason"})); err != nil {
		return nil, fmt.Errorf("cannot register vigil_ingest_rejected_total: %w", err)
	}
	return h, nil
}

// Formats returns the names of the formats the handler reads, sorted.
func (h *Handler) Formats() []string {
	var l []string
	for k := range h.formats {
		l = append(l, k)
	}
	sort.Strings(l)
	return l
}

// ServeHTTP serves POST Path and POST PathFormat.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	format := r.PathValue("format")
	if format == "" {
		format = strings.TrimSpace(r.Header.Get(HeaderFormat))
	}
	source := "cloud"
	open, ok := h.formats[strings.ToLower(format)]
	if !ok {
		status, msg := http.StatusNotFound, fmt.Sprintf("unknown format %q: want one of %s", ingest.Clip(format), strings.Join(h.Formats(), ", "))
		if format == "" {
			status, msg = http.StatusBadRequest, "no format: POST to "+Path+"/<format> or send "+HeaderFormat+" ("+strings.Join(h.Formats(), ", ")+")"
		}
		h.fail(w, source, "decode", status, vigil.EINVALID, msg)
		return
	}
	format = strings.ToLower(format)
	source = "cloud." + format
	body, ok := h.body(w, r, source)
	if !ok {
		return
	}
	now := h.clock.Now()
	var tok *auth.Token
	prov := ""
	if t, ok := auth.FromContext(r.Context()); ok {
		tok = &t
		prov = vigil.NewProvenance(vigil.ProvenanceToken, t.Name)
	}
	rd := open(body, format)
	var events []vigil.Event
	var resp wire.Response
	reject := func(i int, field, msg string) {
		resp.RejectedCount++
		if len(resp.Rejected) < wire.MaxRejections {
			idx := i
			resp.Rejected = append(resp.Rejected, wire.Rejection{Index: &idx, Field: field, Error: msg})
		}
	}
	for i := 0; ; i++ {
		ev, err := rd.Next()
		if err == io.EOF {
			break
		}
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) || (err != nil && strings.Contains(err.Error(), "request body too large")) {
			h.fail(w, source, "too_large", http.StatusRequestEntityTooLarge, vigil.ETOOLARGE, fmt.Sprintf("body is larger than the limit of %d bytes", h.maxBytes))
			return
		}
		if i >= h.maxRecords {
			h.fail(w, source, "too_large", http.StatusRequestEntityTooLarge, vigil.ETOOLARGE, fmt.Sprintf("body holds more than %d records: send fewer a request", h.maxRecords))
			return
		}
		if err != nil {
			reject(i, "", err.Error())
			continue
		}
		if h.maxFuture > 0 {
			if err := ingest.CheckFuture(ev.Time, now, h.maxFuture); err != nil {
				reject(i, "time", err.Error())
				continue
			}
		}
		if tok != nil && !tok.MayPostFor(ev.DeviceID) {
			reject(i, "device_id", fmt.Sprintf("token %q may not send events for device %q: it is bound to other devices", tok.Name, ev.DeviceID))
			continue
		}
		if ev.ID == "" {
			ev.ID = vigil.NewID()
		}
		ev.Received = now
		ev.Provenance = prov
		events = append(events, ev)
	}
	if resp.RejectedCount > 0 {
		h.rejected.WithLabelValues(source, "invalid").Add(float64(resp.RejectedCount))
	}
	if len(events) == 0 && resp.RejectedCount == 0 {
		h.fail(w, source, "decode", http.StatusBadRequest, vigil.EINVALID, "no records in body")
		return
	}
	h.redact.Events(events)
	if len(events) > 0 {
		if err := h.pub.PublishEvents(r.Context(), events); err != nil {
			resp.RejectedCount += len(events)
			if errors.Is(err, bus.ErrBackpressure) {
				w.Header().Set("Retry-After", RetryAfter)
				h.rejected.WithLabelValues(source, "backpressure").Add(float64(len(events)))
				resp.Error = &wire.ErrorDetail{Code: vigil.EBUSY, Message: "the event bus is full: retry later"}
				writeJSON(w, http.StatusTooManyRequests, resp)
				return
			}
			h.rejected.WithLabelValues(source, "publish").Add(float64(len(events)))
			h.log.Error("cannot publish events", "source", source, "events", len(events), "err", err)
			resp.Error = &wire.ErrorDetail{Code: vigil.EINTERNAL, Message: "internal error: the events were not stored, retry later"}
			writeJSON(w, http.StatusInternalServerError, resp)
			return
		}
		h.accepted.WithLabelValues(source).Add(float64(len(events)))
	}
	resp.Accepted = len(events)
	status := http.StatusOK
	if resp.Accepted == 0 {
		status = http.StatusBadRequest
		resp.Error = &wire.ErrorDetail{Code: vigil.EINVALID, Message: "nothing accepted: " + resp.Rejected[0].Error}
	}
	writeJSON(w, status, resp)
}

// body returns the request body within the size limit, decompressed.
func (h *Handler) body(w http.ResponseWriter, r *http.Request, source string) (io.Reader, bool) {
	if r.ContentLength > h.maxBytes {
		h.fail(w, source, "too_large", http.StatusRequestEntityTooLarge, vigil.ETOOLARGE, fmt.Sprintf("body is larger than the limit of %d bytes", h.maxBytes))
		return nil, false
	}
	var body io.Reader = http.MaxBytesReader(w, r.Body, h.maxBytes)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			h.fail(w, source, "decode", http.StatusBadRequest, vigil.EINVALID, "cannot read gzip body: "+err.Error())
			return nil, false
		}
		// the decompressed size is bounded too
		body = &limited{r: zr, n: h.maxBytes}
	default:
		h.fail(w, source, "media_type", http.StatusUnsupportedMediaType, "unsupported_media_type",
			fmt.Sprintf("unsupported content encoding %q: want gzip or none", ingest.Clip(enc)))
		return nil, false
	}
	return body, true
}

// limited reads at most n bytes, then fails with an *http.MaxBytesError.
type limited struct {
	r io.Reader
	n int64
}

func (l *limited) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, &http.MaxBytesError{}
	}
	if int64(len(p)) > l.n {
		p = p[:l.n+1]
	}
	n, err := l.r.Read(p)
	if int64(n) > l.n {
		n = int(l.n)
		l.n = 0
		return n, &http.MaxBytesError{}
	}
	l.n -= int64(n)
	return n, err
}

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

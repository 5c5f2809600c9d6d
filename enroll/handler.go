package enroll

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/agent/protocol"
	"github.com/vigil-iot/vigil/audit"
	"github.com/vigil-iot/vigil/ingest/httpin"
	"github.com/vigil-iot/vigil/pki"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/web"
)

// Defaults.
const (
	DefaultCertTTL     = 365 * 24 * time.Hour
	DefaultPollWait    = 30 * time.Second
	DefaultMaxPollWait = 60 * time.Second
	DefaultCommandTTL  = 5 * time.Minute
	// MaxPending bounds the commands queued for one device.
	MaxPending = 100
	// MaxQueued bounds the commands queued for all devices together.
	MaxQueued = 1000
	// CommandRetention is how long a command is kept after its expiry,
	// with its result, for GET /api/v1/commands/{id}.
	CommandRetention = 7 * 24 * time.Hour
	maxBody          = 64 << 10
)

// Options configures a Handler.
type Options struct {
	// CA signs device certificates. Required.
	CA *pki.CA
	// Tokens are the enrollment tokens. Required.
	Tokens Tokens
	// Revocations are checked on every device request. Required.
	Revocations RevocationList
	// CommandKey signs commands; its public half goes to enrolling agents.
	// Required (EnsureCommandKey).
	CommandKey ed25519.PrivateKey
	// UpdateKey is the public half of the update-signing key
	// (EnsureUpdateKey): enrollment and renewal answers carry it, so that
	// agents verify update artifacts with it and never with the command
	// key. Nil: the answers carry none, and agents refuse updates unless
	// their configuration pins a key.
	UpdateKey ed25519.PublicKey
	// CertTTL is the lifetime of device certificates (default 1 year).
	CertTTL time.Duration
	// Report is the ingest report handler (httpin.Handler.Report()). Front
	// serves POST /api/v1/agent/report with it to clients presenting a
	// device certificate, with the device id in the request context
	// (httpin.WithDevice). Nil leaves reports to the next handler.
	Report http.Handler
	// Bulk is the ingest bulk handler (httpin.Handler.Bulk()). Front serves
	// POST /api/v1/events with it to sensors: clients presenting a
	// certificate of class SensorClass, with the sensor's id in the request
	// context (httpin.WithObserver). Nil leaves bulk events to the next
	// handler.
	Bulk http.Handler
	// Audit, when set, records enrollments, renewals and every command
	// queued (by the API or a playbook) in the audit trail.
	Audit *audit.Recorder
	// OnEnroll is called after a device enrolled (to create its record).
	OnEnroll func(ctx context.Context, deviceID, class string)
	// OnResult is called with every command result an agent sends back
	// (to store it on the Action).
	OnResult func(ctx context.Context, r command.Result)
	// KnownDevice, when set, says whether a device may be sent commands
	// (enrolled or in the inventory): Send refuses the others with
	// ENOTFOUND, so that commands to made-up ids do not fill the queue.
	// An error other than ENOTFOUND refuses the command too. Nil accepts
	// every device id.
	KnownDevice func(ctx context.Context, deviceID string) error
	// OnQueued, when set, is called with every signed command right after
	// it is queued for polling, so that another transport (MQTT) can
	// deliver it too. It must not block long.
	OnQueued func(deviceID string, s command.Signed)
	// Commands is the command queue and its results, shared by every node
	// on one database (store.Commands). Required. New hands the pending
	// commands it finds there to OnQueued; Run wakes the long polls of
	// this node when another node queues a command.
	Commands store.Commands
	// MaxPollWait bounds a long poll (default 60s).
	MaxPollWait time.Duration
	Clock       vigil.Clock
	Logger      *slog.Logger
	// Registerer receives vigil_enroll_requests_total{endpoint,result} and
	// vigil_agent_command_results_total{action,status} (nil: not
	// registered).
	Registerer prometheus.Registerer
}

// Handler serves the device endpoints (enroll, renew, commands, results,
// and reports by certificate) and the administrative routes.
type Handler struct {
	opts Options
	log  *slog.Logger
	mux  *http.ServeMux
	pool *x509.CertPool

	mu      sync.Mutex
	waiters map[string]chan struct{} // long polls by device, closed by wake

	lastPrune atomic.Int64 // Unix ns of the last DeleteCommandsBefore

	requests    *prometheus.CounterVec
	resultCount *prometheus.CounterVec
}

var _ http.Handler = (*Handler)(nil)

// New checks the options and builds the handler.
func New(opts Options) (*Handler, error) {
	if opts.CA == nil || opts.Tokens == nil || opts.Revocations == nil || opts.Commands == nil {
		return nil, errors.New("cannot create enroll handler: CA, Tokens, Revocations and Commands are required")
	}
	if len(opts.CommandKey) != ed25519.PrivateKeySize {
		return nil, errors.New("cannot create enroll handler: CommandKey must be an Ed25519 private key")
	}
	if opts.UpdateKey != nil && len(opts.UpdateKey) != ed25519.PublicKeySize {
		return nil, errors.New("cannot create enroll handler: UpdateKey must be an Ed25519 public key")
	}
	if opts.UpdateKey != nil && opts.UpdateKey.Equal(opts.CommandKey.Public()) {
		return nil, errors.New("cannot create enroll handler: UpdateKey must not be the command key")
	}
	if opts.CertTTL <= 0 {
		opts.CertTTL = DefaultCertTTL
	}
	if opts.MaxPollWait <= 0 {
		opts.MaxPollWait = DefaultMaxPollWait
	}
	if opts.Clock == nil {
		opts.Clock = vigil.SystemClock{}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{opts: opts, log: log.With("component", "enroll"), mux: http.NewServeMux(), pool: opts.CA.Pool(),
		waiters: map[string]chan struct{}{}}
	h.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_enroll_requests_total",
		Help: "Enrollment and renewal requests, by endpoint (enroll, renew) and result (ok, refused)."}, []string{"endpoint", "result"})
	h.resultCount = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_agent_command_results_total",
		Help: "Command results sent back by agents, by action and status (succeeded, failed, refused)."}, []string{"action", "status"})
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{h.requests, h.resultCount} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("cannot register enroll metrics: %w", err)
			}
		}
	}
	h.mux.HandleFunc("POST "+protocol.PathEnroll, h.enroll)
	h.mux.Handle("POST "+protocol.PathRenew, h.RequireDevice(http.HandlerFunc(h.renew)))
	h.mux.Handle("GET "+protocol.PathCommands, h.RequireDevice(http.HandlerFunc(h.poll)))
	h.mux.Handle("POST "+protocol.PathResults, h.RequireDevice(http.HandlerFunc(h.result)))
	if opts.Report != nil {
		h.mux.Handle("POST "+protocol.PathReport, h.RequireDevice(opts.Report))
	}
	if opts.Bulk != nil {
		h.mux.Handle("POST "+httpin.PathEvents, h.requireSensor(opts.Bulk))
	}
	if err := h.handPending(); err != nil {
		return nil, err
	}
	return h, nil
}

// ServeHTTP serves the device endpoints only.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// IsDevicePath reports whether Front serves the request itself.
func (h *Handler) isDeviceRequest(r *http.Request) bool {
	switch r.URL.Path {
	case protocol.PathEnroll, protocol.PathRenew, protocol.PathCommands, protocol.PathResults:
		return true
	case protocol.PathReport:
		return h.opts.Report != nil && r.TLS != nil && len(r.TLS.PeerCertificates) > 0
	case httpin.PathEvents:
		return h.opts.Bulk != nil && r.TLS != nil && len(r.TLS.PeerCertificates) > 0
	}
	return false
}

// Front returns a handler that serves the device endpoints and passes
// every other request to next (the web server). A report from a client
// with a certificate is a device report; a report without one goes to
// next, which authenticates its bearer token.
func (h *Handler) Front(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.isDeviceRequest(r) {
			h.mux.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Authenticate returns the device a request's client certificate names:
// the certificate must chain to the CA, be valid for client
// authentication and not be revoked. EUNAUTHORIZED otherwise.
func (h *Handler) Authenticate(r *http.Request) (string, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return "", vigil.Errorf(vigil.EUNAUTHORIZED, "no client certificate: device endpoints need mutual TLS with the certificate from enrollment")
	}
	leaf := r.TLS.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range r.TLS.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: h.pool, Intermediates: inter, CurrentTime: h.opts.Clock.Now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return "", vigil.Errorf(vigil.EUNAUTHORIZED, "client certificate not accepted: %v", err)
	}
	if err := h.opts.Revocations.Check(leaf); err != nil {
		return "", err
	}
	return pki.DeviceID(leaf)
}

// RequireDevice lets a request through when Authenticate accepts its
// client certificate; the device id goes into the context
// (httpin.WithDevice, read with httpin.DeviceFrom).
func (h *Handler) RequireDevice(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := h.Authenticate(r)
		if err != nil {
			h.log.Info("device request refused", "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
			web.WriteError(w, r, h.log, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(httpin.WithDevice(r.Context(), id)))
	})
}

// decodeBody reads a JSON body of at most maxBody bytes. Unknown fields
// are refused when strict (administrative calls, where a typo must not
// pass silently) and ignored otherwise (agents newer than the server).
func decodeBody(r *http.Request, v any, strict bool) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return vigil.Errorf(vigil.EINVALID, "cannot read body: %v", err)
	}
	if len(b) > maxBody {
		return vigil.Errorf(vigil.ETOOLARGE, "body is larger than %d bytes", maxBody)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return vigil.Errorf(vigil.EINVALID, "cannot decode body: %v", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"error":{"code":"internal","message":"internal error"}}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func parseCSR(s string) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, vigil.Errorf(vigil.EINVALID, "csr: want a PEM CERTIFICATE REQUEST")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, vigil.Errorf(vigil.EINVALID, "csr: %v", err)
	}
	return csr, nil
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9-]+`)

// newDeviceID makes "<class>-<host>-<6 hex>" (host sanitised, optional).
func newDeviceID(class, host string) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	host = strings.Trim(unsafeChars.ReplaceAllString(strings.ToLower(host), "-"), "-")
	if len(host) > 40 {
		host = host[:40]
	}
	parts := []string{class}
	if host != "" {
		parts = append(parts, host)
	}
	return strings.Join(append(parts, hex.EncodeToString(b[:])), "-")
}

func (h *Handler) enroll(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w}
	w = rec
	defer func() { h.requests.WithLabelValues("enroll", rec.result()).Inc() }()
	var req protocol.EnrollRequest
	if err := decodeBody(r, &req, false); err != nil {
		web.WriteError(w, r, h.log, err)
		return
	}
	tok, err := h.opts.Tokens.Peek(req.Token)
	if err != nil {
		h.log.Warn("enrollment refused", "remote", r.RemoteAddr, "err", err)
		web.WriteError(w, r, h.log, err)
		return
	}
	csr, err := parseCSR(req.CSR)
	if err != nil {
		web.WriteError(w, r, h.log, err)
		return
	}
	id := newDeviceID(tok.Class, req.Hostname)
	cert, certPEM, err := h.opts.CA.SignDeviceCSR(csr, id, tok.Class, h.opts.CertTTL)
	if err != nil {
		web.WriteError(w, r, h.log, err)
		return
	}
	// Redeem last: a failed signature does not burn the token; a token
	// used concurrently fails here for all but one.
	if _, err := h.opts.Tokens.Redeem(req.Token, id); err != nil {
		h.log.Warn("enrollment refused", "remote", r.RemoteAddr, "err", err)
		web.WriteError(w, r, h.log, err)
		return
	}
	h.log.Info("device enrolled", "device_id", id, "class", tok.Class, "token_id", tok.ID, "serial", cert.SerialNumber.Text(16))
	h.audit(r.Context(), "enroll-token:"+tok.ID, "device.enroll", "device:"+id, map[string]any{
		"class": tok.Class, "serial": cert.SerialNumber.Text(16), "not_after": cert.NotAfter, "remote": r.RemoteAddr})
	if h.opts.OnEnroll != nil {
		h.opts.OnEnroll(r.Context(), id, tok.Class)
	}
	writeJSON(w, http.StatusOK, protocol.EnrollResponse{DeviceID: id, Class: tok.Class, Certificate: string(certPEM),
		CA: string(h.opts.CA.CertPEM()), CommandKey: h.opts.CommandKey.Public().(ed25519.PublicKey), UpdateKey: h.opts.UpdateKey, NotAfter: cert.NotAfter})
}

func (h *Handler) renew(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w}
	w = rec
	defer func() { h.requests.WithLabelValues("renew", rec.result()).Inc() }()
	id, _ := httpin.DeviceFrom(r.Context())
	var req protocol.RenewRequest
	if err := decodeBody(r, &req, false); err != nil {
		web.WriteError(w, r, h.log, err)
		return
	}
	csr, err := parseCSR(req.CSR)
	if err != nil {
		web.WriteError(w, r, h.log, err)
		return
	}
	// The class stays the one the enrollment token gave.
	cert, certPEM, err := h.opts.CA.SignDeviceCSR(csr, id, pki.DeviceClass(r.TLS.PeerCertificates[0]), h.opts.CertTTL)
	if err != nil {
		web.WriteError(w, r, h.log, err)
		return
	}
	h.log.Info("device certificate renewed", "device_id", id, "serial", cert.SerialNumber.Text(16), "not_after", cert.NotAfter)
	h.audit(r.Context(), "device:"+id, "device.renew", "device:"+id, map[string]any{"serial": cert.SerialNumber.Text(16), "not_after": cert.NotAfter})
	writeJSON(w, http.StatusOK, protocol.RenewResponse{Certificate: string(certPEM), NotAfter: cert.NotAfter, UpdateKey: h.opts.UpdateKey})
}

// Send signs a command for a device and queues it for the device's next
// poll. ttl 0 means DefaultCommandTTL; at most command.DefaultMaxTTL.
// EINVALID for an unknown action or bad ttl, ENOTFOUND for a device
// KnownDevice does not know, EBUSY when MaxPending commands already wait
// for the device or MaxQueued for all devices.
func (h *Handler) Send(deviceID, action string, params map[string]string, ttl time.Duration) (command.Command, error) {
	return h.SendAs("", deviceID, action, params, ttl)
}

// SendAs is Send for a command asked for by someone: by ("user:ana",
// "token:ci", "action:<id>") is kept with the queued command
// (store.QueuedCommand.By) for the device's command history.
func (h *Handler) SendAs(by, deviceID, action string, params map[string]string, ttl time.Duration) (command.Command, error) {
	if !slices.Contains(command.Actions, action) {
		return command.Command{}, vigil.Errorf(vigil.EINVALID, "unknown action %q: want one of %s", action, strings.Join(command.Actions, ", "))
	}
	if deviceID == "" {
		return command.Command{}, vigil.Errorf(vigil.EINVALID, "no device id")
	}
	if ttl == 0 {
		ttl = DefaultCommandTTL
	}
	if ttl < 0 || ttl > command.DefaultMaxTTL {
		return command.Command{}, vigil.Errorf(vigil.EINVALID, "command ttl %s is not in (0, %s]", ttl, command.DefaultMaxTTL)
	}
	if h.opts.KnownDevice != nil {
		if err := h.opts.KnownDevice(context.Background(), deviceID); err != nil {
			if vigil.ErrorCode(err) == vigil.ENOTFOUND {
				return command.Command{}, vigil.Errorf(vigil.ENOTFOUND, "no device %q: commands go only to enrolled or inventoried devices", deviceID)
			}
			return command.Command{}, fmt.Errorf("cannot look up device %q: %w", deviceID, err)
		}
	}
	now := h.opts.Clock.Now().UTC()
	c := command.Command{ID: vigil.NewID(), DeviceID: deviceID, Action: action, Params: params, Issued: now, Expires: now.Add(ttl)}
	s, err := command.Sign(h.opts.CommandKey, c)
	if err != nil {
		return command.Command{}, err
	}
	_ = json.Unmarshal(s.Payload, &c) // the nonce Sign chose
	signed, err := json.Marshal(s)
	if err != nil {
		return command.Command{}, fmt.Errorf("cannot encode command: %w", err)
	}
	ctx, cancel := storeCtx()
	defer cancel()
	if _, err := h.opts.Commands.EnqueueCommand(ctx, store.QueuedCommand{ID: c.ID, DeviceID: deviceID, Queued: now, Expires: c.Expires, Signed: signed, By: by},
		MaxPending, MaxQueued); err != nil {
		if vigil.ErrorCode(err) == vigil.EBUSY {
			return command.Command{}, err
		}
		return command.Command{}, fmt.Errorf("cannot queue command: %w", err)
	}
	h.wake(deviceID) // this node's polls; Run wakes the other nodes'
	h.prune(now)
	h.log.Info("command queued", "device_id", deviceID, "command_id", c.ID, "action", action)
	h.audit(context.Background(), "vigil", "command.queue", "device:"+deviceID, map[string]any{
		"command": c.ID, "action": action, "params": params, "expires": c.Expires})
	if h.opts.OnQueued != nil {
		h.opts.OnQueued(deviceID, s)
	}
	return c, nil
}

// Result returns the result an agent sent for a command, if any, and the
// command as issued (zero when the store does not know it).
func (h *Handler) Result(commandID string) (command.Command, command.Result, bool) {
	ctx, cancel := storeCtx()
	defer cancel()
	q, err := h.opts.Commands.GetCommand(ctx, commandID)
	if err != nil {
		if vigil.ErrorCode(err) != vigil.ENOTFOUND {
			h.log.Error("cannot read command", "command_id", commandID, "err", err)
		}
		return command.Command{}, command.Result{}, false
	}
	c, _, err := decodeQueued(q)
	if err != nil {
		h.log.Error("cannot read command", "command_id", commandID, "err", err)
		return command.Command{}, command.Result{}, false
	}
	if q.Result == nil {
		return c, command.Result{}, false
	}
	var r command.Result
	if err := json.Unmarshal(q.Result, &r); err != nil {
		h.log.Error("cannot read command result", "command_id", commandID, "err", err)
		return c, command.Result{}, false
	}
	return c, r, true
}

func (h *Handler) poll(w http.ResponseWriter, r *http.Request) {
	id, _ := httpin.DeviceFrom(r.Context())
	wait := DefaultPollWait
	if s := r.URL.Query().Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			web.WriteError(w, r, h.log, vigil.Errorf(vigil.EINVALID, "wait %q: want a duration such as 30s", s))
			return
		}
		wait = min(d, h.opts.MaxPollWait)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		cmds, ch, err := h.take(r.Context(), id)
		if err != nil {
			web.WriteError(w, r, h.log, err)
			return
		}
		if len(cmds) > 0 {
			writeJSON(w, http.StatusOK, command.Poll{Commands: cmds})
			return
		}
		select {
		case <-ch:
		case <-t.C:
			w.WriteHeader(http.StatusNoContent)
			return
		case <-r.Context().Done():
			return
		}
	}
}

func (h *Handler) result(w http.ResponseWriter, r *http.Request) {
	id, _ := httpin.DeviceFrom(r.Context())
	var res command.Result
	if err := decodeBody(r, &res, false); err != nil {
		web.WriteError(w, r, h.log, err)
		return
	}
	res.DeviceID = id
	if err := h.AcceptResult(&res); err != nil {
		h.log.Warn("command result refused", "device_id", id, "command_id", res.CommandID, "err", err)
		web.WriteError(w, r, h.log, err)
		return
	}
	level := slog.LevelInfo
	if res.Status != command.StatusSucceeded {
		level = slog.LevelWarn
	}
	h.log.Log(r.Context(), level, "command result", "device_id", id, "command_id", res.CommandID, "action", res.Action,
		"status", res.Status, "reason", res.Reason, "err", res.Error)
	h.resultCount.WithLabelValues(res.Action, res.Status).Inc()
	if h.opts.OnResult != nil {
		h.opts.OnResult(r.Context(), res)
	}
	writeJSON(w, http.StatusOK, struct{}{})
}

// audit appends a record when Options.Audit is set; a failure is logged
// by the recorder (the change is made).
func (h *Handler) audit(ctx context.Context, actor, action, object string, detail any) {
	if h.opts.Audit != nil {
		_, _ = h.opts.Audit.RecordJSON(context.WithoutCancel(ctx), actor, action, object, detail)
	}
}

// AcceptResult checks a command result sent by device res.DeviceID and
// records it: the command must have been issued to that device (else
// EFORBIDDEN: one device may not report for another's command, and a
// made-up command id is refused too) and the status one of succeeded,
// failed or refused (else EINVALID). The action is set to the command's
// as issued, so that what a device claims never becomes a metric label.
// Results coming by another transport (MQTT) go through it before
// OnResult too.
func (h *Handler) AcceptResult(res *command.Result) error {
	switch res.Status {
	case command.StatusSucceeded, command.StatusFailed, command.StatusRefused:
	default:
		return vigil.Errorf(vigil.EINVALID, "status %q: want succeeded, failed or refused", truncate(res.Status, 40))
	}
	ctx, cancel := storeCtx()
	defer cancel()
	q, err := h.opts.Commands.GetCommand(ctx, res.CommandID)
	if err != nil && vigil.ErrorCode(err) != vigil.ENOTFOUND {
		return fmt.Errorf("cannot look up command: %w", err)
	}
	if err != nil || q.DeviceID != res.DeviceID {
		return vigil.Errorf(vigil.EFORBIDDEN, "command %q was not issued to device %s", truncate(res.CommandID, 64), res.DeviceID)
	}
	c, _, err := decodeQueued(q)
	if err != nil {
		return err
	}
	res.Action = c.Action
	b, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("cannot encode command result: %w", err)
	}
	if err := h.opts.Commands.RecordCommandResult(ctx, res.CommandID, b, h.opts.Clock.Now().UTC()); err != nil {
		return fmt.Errorf("cannot record command result: %w", err)
	}
	return nil
}

// truncate shortens s to at most n bytes for an error message.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// statusRecorder remembers the status of an answer, for the metrics.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusRecorder) result() string {
	if w.status == 0 || w.status == http.StatusOK {
		return "ok"
	}
	return "refused"
}

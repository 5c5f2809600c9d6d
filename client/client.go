package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/web/api"
	"github.com/vigil-iot/vigil/wire"
)

// Defaults of the options.
const (
	DefaultMaxConns = 64
	DefaultTimeout  = 30 * time.Second
	// maxResponse bounds a response body the client reads.
	maxResponse = 64 << 20
)

// Client calls one Vigil server. It is safe for concurrent use.
type Client struct {
	base      string // scheme://host[:port][/path], no trailing slash
	token     string
	hc        *http.Client
	tr        *http.Transport
	userAgent string
}

type config struct {
	maxConns  int
	timeout   time.Duration
	userAgent string
}

// Option configures a Client.
type Option func(*config)

// WithMaxConns sizes the connection pool: at most n connections to the
// server, all kept alive between requests (default DefaultMaxConns).
func WithMaxConns(n int) Option { return func(c *config) { c.maxConns = n } }

// WithTimeout bounds each request, body included (default DefaultTimeout;
// 0 means no bound beyond the context's).
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *config) { c.userAgent = ua } }

// TLSConfig returns a client TLS configuration that trusts only pool
// (Vigil's CA, pki.CA.Pool) and speaks TLS 1.2 or later.
func TLSConfig(pool *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// LoadCAFile reads a PEM file of CA certificates (the data dir's ca.crt)
// into a pool.
func LoadCAFile(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("cannot read CA file %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// New returns a client of the server at baseURL ("https://127.0.0.1:8443")
// that sends token as its bearer token. tc configures TLS (TLSConfig(pool)
// for Vigil's own CA); nil uses the system's roots.
func New(baseURL, token string, tc *tls.Config, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, vigil.Errorf(vigil.EINVALID, "base URL %q: want http(s)://host[:port]", baseURL)
	}
	cfg := config{maxConns: DefaultMaxConns, timeout: DefaultTimeout, userAgent: "vigil-client"}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.maxConns <= 0 {
		cfg.maxConns = DefaultMaxConns
	}
	if tc != nil {
		tc = tc.Clone()
		if tc.MinVersion < tls.VersionTLS12 {
			tc.MinVersion = tls.VersionTLS12
		}
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   10 * time.Second,
		MaxIdleConns:          cfg.maxConns,
		MaxIdleConnsPerHost:   cfg.maxConns,
		MaxConnsPerHost:       cfg.maxConns,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		// HTTP/1.1 only: many connections in parallel suit a load
		// generator better than one multiplexed HTTP/2 connection.
		ForceAttemptHTTP2: false,
		TLSNextProto:      map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	return &Client{
		base:      strings.TrimRight(u.String(), "/"),
		token:     token,
		tr:        tr,
		hc:        &http.Client{Transport: tr, Timeout: cfg.timeout},
		userAgent: cfg.userAgent,
	}, nil
}

// BaseURL returns the server's base URL.
func (c *Client) BaseURL() string { return c.base }

// Close closes the idle connections.
func (c *Client) Close() { c.tr.CloseIdleConnections() }

// Error is an error answer of the server.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Code is the vigil error code ("invalid", "busy", ...), or "" when
	// the body had none.
	Code string
	// Message is the server's explanation.
	Message string
	// RetryAfter is the server's Retry-After delay (429, 503), or 0.
	RetryAfter time.Duration
	// Ingest is the ingest answer of a report or bulk post that failed:
	// for a 400 it lists the rejected items.
	Ingest *wire.Response
}

// Error describes the answer.
func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	if e.Code != "" {
		return fmt.Sprintf("server answered %d %s: %s", e.Status, e.Code, msg)
	}
	return fmt.Sprintf("server answered %d: %s", e.Status, msg)
}

// Unwrap returns the error as a *vigil.Error, so vigil.ErrorCode works on
// it. A body without a code gets the code of its status.
func (e *Error) Unwrap() error {
	code := e.Code
	if code == "" {
		code = codeOfStatus(e.Status)
	}
	return &vigil.Error{Code: code, Message: e.Message}
}

// Busy reports whether the server asked to retry later (429).
func (e *Error) Busy() bool { return e.Status == http.StatusTooManyRequests }

func codeOfStatus(status int) string {
	switch status {
	case 400:
		return vigil.EINVALID
	case 401:
		return vigil.EUNAUTHORIZED
	case 403:
		return vigil.EFORBIDDEN
	case 404:
		return vigil.ENOTFOUND
	case 409:
		return vigil.ECONFLICT
	case 413:
		return vigil.ETOOLARGE
	case 429, 503:
		return vigil.EBUSY
	}
	return vigil.EINTERNAL
}

// IsBusy reports whether err is a server answer asking to retry later,
// and after how long.
func IsBusy(err error) (time.Duration, bool) {
	var e *Error
	if errors.As(err, &e) && e.Busy() {
		return e.RetryAfter, true
	}
	return 0, false
}

// do sends a request and returns the body of a 2xx answer, or an *Error.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, contentType string, body []byte) ([]byte, int, error) {
	target := c.base + path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot build request: %w", err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot %s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxResponse+1))
	if err != nil {
		return nil, res.StatusCode, fmt.Errorf("cannot read answer of %s %s: %w", method, path, err)
	}
	if len(b) > maxResponse {
		return nil, res.StatusCode, fmt.Errorf("cannot read answer of %s %s: over %d bytes", method, path, maxResponse)
	}
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		return b, res.StatusCode, nil
	}
	e := &Error{Status: res.StatusCode, RetryAfter: retryAfter(res.Header.Get("Retry-After"), time.Now())}
	var eb api.ErrorBody
	if json.Unmarshal(b, &eb) == nil && eb.Error.Code != "" {
		e.Code, e.Message = eb.Error.Code, eb.Error.Message
	} else {
		e.Message = strings.TrimSpace(string(b))
		if len(e.Message) > 200 {
			e.Message = e.Message[:200] + "..."
		}
	}
	return b, res.StatusCode, e
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(h)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// getJSON GETs path and decodes the answer into v.
func (c *Client) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	b, _, err := c.do(ctx, http.MethodGet, path, q, "", nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("cannot decode answer of GET %s: %w", path, err)
	}
	return nil
}

func list[T any](ctx context.Context, c *Client, path string, q url.Values) ([]T, string, error) {
	var l api.List[T]
	if err := c.getJSON(ctx, path, q, &l); err != nil {
		return nil, "", err
	}
	return l.Items, l.NextCursor, nil
}

func pageQuery(q url.Values, p store.Page) {
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.Cursor != "" {
		q.Set("cursor", p.Cursor)
	}
}

func setTime(q url.Values, name string, t time.Time) {
	if !t.IsZero() {
		q.Set(name, t.UTC().Format(time.RFC3339Nano))
	}
}

func setStr(q url.Values, name, v string) {
	if v != "" {
		q.Set(name, v)
	}
}

func escape(id string) string { return url.PathEscape(id) }

// ListDevices returns one page of devices matching f, and the next cursor.
func (c *Client) ListDevices(ctx context.Context, f store.DeviceFilter) ([]vigil.Device, string, error) {
	q := url.Values{}
	setStr(q, "class", f.Class)
	setStr(q, "state", string(f.State))
	setStr(q, "tag", f.Tag)
	pageQuery(q, f.Page)
	return list[vigil.Device](ctx, c, api.Prefix+"/devices", q)
}

// GetDevice returns a device with its health history of the server's
// default window (the last hour).
func (c *Client) GetDevice(ctx context.Context, id string) (api.DeviceDetail, error) {
	return c.GetDeviceHistory(ctx, id, time.Time{}, time.Time{})
}

// GetDeviceHistory returns a device with its health samples in [since,
// until); zero times take the server's defaults.
func (c *Client) GetDeviceHistory(ctx context.Context, id string, since, until time.Time) (api.DeviceDetail, error) {
	q := url.Values{}
	setTime(q, "since", since)
	setTime(q, "until", until)
	var d api.DeviceDetail
	err := c.getJSON(ctx, api.Prefix+"/devices/"+escape(id), q, &d)
	return d, err
}

// ListAlerts returns one page of alerts matching f, newest first or by
// priority (f.Sort).
func (c *Client) ListAlerts(ctx context.Context, f store.AlertFilter) ([]vigil.Alert, string, error) {
	q := url.Values{}
	setStr(q, "device", f.DeviceID)
	setStr(q, "rule", f.RuleID)
	setStr(q, "incident", f.IncidentID)
	if f.MinSeverity > 0 {
		q.Set("min_severity", f.MinSeverity.String())
	}
	setTime(q, "since", f.Since)
	setTime(q, "until", f.Until)
	setStr(q, "sort", f.Sort)
	pageQuery(q, f.Page)
	return list[vigil.Alert](ctx, c, api.Prefix+"/alerts", q)
}

// GetAlert returns one alert.
func (c *Client) GetAlert(ctx context.Context, id string) (vigil.Alert, error) {
	var a vigil.Alert
	err := c.getJSON(ctx, api.Prefix+"/alerts/"+escape(id), nil, &a)
	return a, err
}

// ListIncidents returns one page of incidents matching f, newest first or
// by priority (f.Sort; the server's default for open incidents).
func (c *Client) ListIncidents(ctx context.Context, f store.IncidentFilter) ([]api.Incident, string, error) {
	q := url.Values{}
	setStr(q, "status", string(f.Status))
	setStr(q, "device", f.DeviceID)
	setTime(q, "updated_since", f.UpdatedSince)
	setStr(q, "sort", f.Sort)
	pageQuery(q, f.Page)
	return list[api.Incident](ctx, c, api.Prefix+"/incidents", q)
}

// GetIncident returns one incident with its time to detect and contain.
func (c *Client) GetIncident(ctx context.Context, id string) (api.Incident, error) {
	var i api.Incident
	err := c.getJSON(ctx, api.Prefix+"/incidents/"+escape(id), nil, &i)
	return i, err
}

// ListEvents returns one page of events matching f, newest first.
func (c *Client) ListEvents(ctx context.Context, f store.EventFilter) ([]vigil.Event, string, error) {
	q := url.Values{}
	setStr(q, "device", f.DeviceID)
	setStr(q, "kind", f.Kind)
	setTime(q, "since", f.Since)
	setTime(q, "until", f.Until)
	for name, v := range f.Fields {
		q.Set("field."+name, v)
	}
	pageQuery(q, f.Page)
	return list[vigil.Event](ctx, c, api.Prefix+"/events", q)
}

// GetEvent returns one event.
func (c *Client) GetEvent(ctx context.Context, id string) (vigil.Event, error) {
	var e vigil.Event
	err := c.getJSON(ctx, api.Prefix+"/events/"+escape(id), nil, &e)
	return e, err
}

// CreateToken makes a new API token (admin only). The answer holds the
// secret, which the server shows only this once.
func (c *Client) CreateToken(ctx context.Context, name string, role auth.Role) (api.CreatedToken, error) {
	return c.CreateTokenWith(ctx, api.CreateTokenRequest{Name: name, Role: role})
}

// CreateTokenWith is CreateToken with every setting of the request: an
// expiry, a binding to devices.
func (c *Client) CreateTokenWith(ctx context.Context, req api.CreateTokenRequest) (api.CreatedToken, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return api.CreatedToken{}, fmt.Errorf("cannot encode token request: %w", err)
	}
	b, _, err := c.do(ctx, http.MethodPost, api.Prefix+"/tokens", nil, "application/json", body)
	if err != nil {
		return api.CreatedToken{}, err
	}
	var t api.CreatedToken
	if err := json.Unmarshal(b, &t); err != nil {
		return api.CreatedToken{}, fmt.Errorf("cannot decode created token: %w", err)
	}
	return t, nil
}

// ListTokens returns every token (admin only); secrets are never listed.
func (c *Client) ListTokens(ctx context.Context) ([]auth.Token, error) {
	toks, _, err := list[auth.Token](ctx, c, api.Prefix+"/tokens", nil)
	return toks, err
}

// RevokeToken deletes a token by id or name (admin only).
func (c *Client) RevokeToken(ctx context.Context, ref string) error {
	_, _, err := c.do(ctx, http.MethodDelete, api.Prefix+"/tokens/"+escape(ref), nil, "", nil)
	return err
}

// PostReport posts one agent report, encoded as contentType
// ("application/json" or "application/xml"). The answer says how many
// events were accepted and which items were rejected. On an error answer
// the *Error's Ingest holds the answer too (a 400 lists the rejections).
func (c *Client) PostReport(ctx context.Context, contentType string, body []byte) (*wire.Response, error) {
	return c.ingest(ctx, api.Prefix+"/agent/report", contentType, body)
}

// PostEvents posts normalized events as NDJSON (one JSON event per line).
func (c *Client) PostEvents(ctx context.Context, ndjson []byte) (*wire.Response, error) {
	return c.ingest(ctx, api.Prefix+"/events", "application/x-ndjson", ndjson)
}

func (c *Client) ingest(ctx context.Context, path, contentType string, body []byte) (*wire.Response, error) {
	if body == nil {
		body = []byte{}
	}
	b, _, err := c.do(ctx, http.MethodPost, path, nil, contentType, body)
	var resp wire.Response
	decoded := len(b) > 0 && json.Unmarshal(b, &resp) == nil
	if err != nil {
		var e *Error
		if errors.As(err, &e) && decoded {
			e.Ingest = &resp
		}
		return nil, err
	}
	if !decoded {
		return nil, fmt.Errorf("cannot decode answer of POST %s: %.200q", path, b)
	}
	return &resp, nil
}

// Healthz checks that the server process is up.
func (c *Client) Healthz(ctx context.Context) error {
	_, _, err := c.do(ctx, http.MethodGet, "/healthz", nil, "", nil)
	return err
}

// Ready checks that the server can do its work (/readyz).
func (c *Client) Ready(ctx context.Context) error {
	_, _, err := c.do(ctx, http.MethodGet, "/readyz", nil, "", nil)
	return err
}

package httpc

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Client sends requests to one server over TLS. It is safe for concurrent
// use; requests are serialised on its one connection (use two Clients for
// a long poll beside other requests).
type Client struct {
	// TLS is the client TLS configuration (mTLS certificate, roots). Nil
	// means the system roots and no client certificate.
	TLS *tls.Config
	// Timeout bounds a request without a context deadline (default 60s).
	Timeout time.Duration
	// UserAgent is sent when set.
	UserAgent string
	// Dial overrides the TCP dialer (tests).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)

	mu   sync.Mutex
	conn *tls.Conn
	br   *bufio.Reader
	addr string
}

// Response is a complete answer; the body is read into memory.
type Response struct {
	Status int
	Header map[string]string // lower-case names; the last value wins
	Body   []byte
	// TLS is the connection state (peer certificates).
	TLS tls.ConnectionState
}

// MaxBody bounds a response body.
const MaxBody = 64 << 20

// Do sends one request and reads the whole answer (at most MaxBody).
// header names are sent as given.
func (c *Client) Do(ctx context.Context, method, rawURL string, header map[string]string, body []byte) (*Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("cannot %s %s: %w", method, rawURL, err)
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("cannot %s %s: only https is supported", method, rawURL)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "443")
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	if u.RawQuery != "" {
		path += "?" + u.RawQuery
	}
	var req bytes.Buffer
	req.WriteString(method + " " + path + " HTTP/1.1\r\nHost: " + u.Host + "\r\n")
	if c.UserAgent != "" {
		req.WriteString("User-Agent: " + c.UserAgent + "\r\n")
	}
	for k, v := range header {
		if strings.ContainsAny(k+v, "\r\n") {
			return nil, fmt.Errorf("cannot %s %s: header %q holds a line break", method, rawURL, k)
		}
		req.WriteString(k + ": " + v + "\r\n")
	}
	if body != nil || method == "POST" || method == "PUT" {
		req.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n")
	}
	req.WriteString("\r\n")
	req.Write(body)

	c.mu.Lock()
	defer c.mu.Unlock()
	deadline, ok := ctx.Deadline()
	if !ok {
		to := c.Timeout
		if to <= 0 {
			to = time.Minute
		}
		deadline = time.Now().Add(to)
	}
	for attempt := 0; ; attempt++ {
		reused := c.conn != nil && c.addr == host
		if !reused {
			if err := c.dial(ctx, host, u.Hostname(), deadline); err != nil {
				return nil, fmt.Errorf("cannot %s %s: %w", method, rawURL, err)
			}
		}
		resp, err := c.roundTrip(ctx, req.Bytes(), deadline, method)
		if err == nil {
			return resp, nil
		}
		c.closeLocked()
		// A kept-alive connection the server closed meanwhile: once more
		// on a new one. Requests are idempotent or deduplicated by the
		// server (reports carry ids).
		if reused && attempt == 0 && ctx.Err() == nil && isStale(err) {
			continue
		}
		return nil, fmt.Errorf("cannot %s %s: %w", method, rawURL, err)
	}
}

var errStale = errors.New("connection closed by the server")

func isStale(err error) bool {
	return errors.Is(err, errStale) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.Contains(err.Error(), "broken pipe") || strings.Contains(err.Error(), "connection reset")
}

func (c *Client) dial(ctx context.Context, addr, serverName string, deadline time.Time) error {
	c.closeLocked()
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	dial := c.Dial
	if dial == nil {
		d := &net.Dialer{KeepAlive: 30 * time.Second}
		dial = d.DialContext
	}
	raw, err := dial(dctx, "tcp", addr)
	if err != nil {
		return err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLS != nil {
		cfg = c.TLS.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = serverName
	}
	cfg.NextProtos = []string{"http/1.1"}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(dctx); err != nil {
		raw.Close()
		return err
	}
	c.conn, c.br, c.addr = tc, bufio.NewReaderSize(tc, 8<<10), addr
	return nil
}

func (c *Client) closeLocked() {
	if c.conn != nil {
		c.conn.Close()
	}
	c.conn, c.br, c.addr = nil, nil, ""
}

// Close closes the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closeLocked()
	return nil
}

func (c *Client) roundTrip(ctx context.Context, req []byte, deadline time.Time, method string) (*Response, error) {
	conn := c.conn
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := conn.Write(req); err != nil {
		return nil, err
	}
	for {
		resp, keep, err := readResponse(c.br, method)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
		if resp.Status == 100 {
			continue
		}
		resp.TLS = conn.ConnectionState()
		if !keep {
			c.closeLocked()
		}
		return resp, nil
	}
}

func readResponse(br *bufio.Reader, method string) (*Response, bool, error) {
	line, err := readLine(br)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, false, errStale
		}
		return nil, false, err
	}
	proto, rest, _ := strings.Cut(line, " ")
	code, _, _ := strings.Cut(rest, " ")
	status, err := strconv.Atoi(code)
	if !strings.HasPrefix(proto, "HTTP/1.") || err != nil || status < 100 || status > 999 {
		return nil, false, fmt.Errorf("malformed status line %q", line)
	}
	resp := &Response{Status: status, Header: map[string]string{}}
	for {
		l, err := readLine(br)
		if err != nil {
			return nil, false, err
		}
		if l == "" {
			break
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			return nil, false, fmt.Errorf("malformed header line %q", l)
		}
		resp.Header[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	keep := proto == "HTTP/1.1" && !strings.EqualFold(resp.Header["connection"], "close")
	if status == 100 {
		return resp, true, nil
	}
	if method == "HEAD" || status == 204 || status == 304 {
		return resp, keep, nil
	}
	switch {
	case strings.EqualFold(resp.Header["transfer-encoding"], "chunked"):
		resp.Body, err = readChunked(br)
	case resp.Header["content-length"] != "":
		n, perr := strconv.ParseInt(resp.Header["content-length"], 10, 64)
		if perr != nil || n < 0 || n > MaxBody {
			return nil, false, fmt.Errorf("bad or too large Content-Length %q", resp.Header["content-length"])
		}
		resp.Body = make([]byte, n)
		_, err = io.ReadFull(br, resp.Body)
	default:
		resp.Body, err = io.ReadAll(io.LimitReader(br, MaxBody))
		keep = false
	}
	if err != nil {
		return nil, false, fmt.Errorf("cannot read body: %w", err)
	}
	return resp, keep, nil
}

func readChunked(br *bufio.Reader) ([]byte, error) {
	var out []byte
	for {
		l, err := readLine(br)
		if err != nil {
			return nil, err
		}
		l, _, _ = strings.Cut(l, ";")
		n, err := strconv.ParseInt(strings.TrimSpace(l), 16, 64)
		if err != nil || n < 0 || int64(len(out))+n > MaxBody {
			return nil, fmt.Errorf("bad chunk size %q", l)
		}
		if n == 0 {
			for { // trailers
				t, err := readLine(br)
				if err != nil {
					return nil, err
				}
				if t == "" {
					return out, nil
				}
			}
		}
		start := len(out)
		out = append(out, make([]byte, n)...)
		if _, err := io.ReadFull(br, out[start:]); err != nil {
			return nil, err
		}
		if l, err := readLine(br); err != nil || l != "" {
			return nil, fmt.Errorf("missing CRLF after chunk")
		}
	}
}

func readLine(br *bufio.Reader) (string, error) {
	var b []byte
	for {
		part, more, err := br.ReadLine()
		if err != nil {
			return "", err
		}
		b = append(b, part...)
		if len(b) > 64<<10 {
			return "", errors.New("header line too long")
		}
		if !more {
			return string(b), nil
		}
	}
}

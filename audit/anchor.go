package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
)

// Anchor names the newest record of the trail at a moment: its Seq, Hash
// and MAC. Exported out of the database (a file, syslog, a webhook), it
// lets Verify tell a trail whose newest records were deleted from one that
// never had them. An anchor cannot be forged without the audit key: its
// MAC is the record's.
type Anchor struct {
	Time time.Time `json:"time"`
	Seq  int64     `json:"seq"`
	Hash string    `json:"hash"`
	MAC  string    `json:"mac"`
}

// AnchorOf returns the anchor of r, made at t.
func AnchorOf(r vigil.AuditRecord, t time.Time) Anchor {
	return Anchor{Time: t.UTC(), Seq: r.Seq, Hash: r.Hash, MAC: r.MAC}
}

// Valid reports whether the anchor's MAC is the audit key's MAC of its
// hash.
func (a Anchor) Valid(key []byte) bool {
	r := vigil.AuditRecord{Hash: a.Hash}
	return hmac.Equal([]byte(r.ComputeMAC(key)), []byte(a.MAC))
}

// Line is the anchor as one line of JSON (what every sink sends).
func (a Anchor) Line() []byte {
	b, _ := json.Marshal(struct {
		Msg string `json:"msg"`
		Anchor
	}{"vigil audit anchor", a})
	return b
}

// ReadAnchors returns the anchor of highest Seq found in r: one JSON
// object per line, possibly after a prefix (a syslog header) and with other
// fields (a JSON log line of `vigil serve`), or a text log line of `vigil
// serve` (msg="audit anchor"). Lines without seq, hash and mac are
// skipped; ok is false when there was none.
func ReadAnchors(r io.Reader) (last Anchor, ok bool, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var a Anchor
		if bytes.Contains(line, []byte(`msg="audit anchor"`)) {
			a = textAnchor(string(line))
		} else if i, j := bytes.IndexByte(line, '{'), bytes.LastIndexByte(line, '}'); i >= 0 && j > i {
			_ = json.Unmarshal(line[i:j+1], &a)
		}
		if a.Seq <= 0 || a.Hash == "" || a.MAC == "" {
			continue
		}
		if !ok || a.Seq >= last.Seq {
			last, ok = a, true
		}
	}
	if err := sc.Err(); err != nil {
		return last, ok, fmt.Errorf("cannot read anchors: %w", err)
	}
	return last, ok, nil
}

// textAnchor reads the anchor of a text log line of `vigil serve`
// (msg="audit anchor" ... seq=N hash=H mac=M).
func textAnchor(line string) Anchor {
	var a Anchor
	for _, f := range strings.Fields(line) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "time":
			a.Time, _ = time.Parse(time.RFC3339Nano, v)
		case "seq":
			a.Seq, _ = strconv.ParseInt(v, 10, 64)
		case "hash":
			a.Hash = v
		case "mac":
			a.MAC = v
		}
	}
	return a
}

// ReadAnchorFile is ReadAnchors on a file.
func ReadAnchorFile(path string) (Anchor, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return Anchor{}, false, fmt.Errorf("cannot read anchors: %w", err)
	}
	defer f.Close()
	a, ok, err := ReadAnchors(f)
	if err != nil {
		return a, ok, fmt.Errorf("%s: %w", path, err)
	}
	return a, ok, nil
}

// Sink is where anchors are exported. Export must not keep a; it is
// called from one goroutine at a time.
type Sink interface {
	// Name says where the sink writes, for logs ("file:/var/log/...").
	Name() string
	Export(ctx context.Context, a Anchor) error
}

var (
	_ Sink = FileSink{}
	_ Sink = SyslogSink{}
	_ Sink = (*WebhookSink)(nil)
)

// FileSink appends anchors to a file, one JSON line each (created 0600).
// The file is opened for every anchor, so it can be rotated.
type FileSink struct{ Path string }

// Name returns "file:<path>".
func (s FileSink) Name() string { return "file:" + s.Path }

// Export appends the anchor and syncs the file.
func (s FileSink) Export(_ context.Context, a Anchor) error {
	f, err := os.OpenFile(s.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("cannot open anchor file: %w", err)
	}
	_, err = f.Write(append(a.Line(), '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cannot write anchor file %s: %w", s.Path, err)
	}
	return nil
}

// SyslogSink sends anchors as RFC 5424 messages (authpriv.notice, app
// "vigil", msgid "audit-anchor", the JSON line as MSG) over UDP or TCP
// (octet-counted framing).
type SyslogSink struct {
	Network  string // "udp" (default) or "tcp"
	Addr     string // host:port
	Hostname string // default os.Hostname()
}

// Name returns "syslog:<network>://<addr>".
func (s SyslogSink) Name() string { return "syslog:" + cmpOr(s.Network, "udp") + "://" + s.Addr }

// Export sends one message.
func (s SyslogSink) Export(ctx context.Context, a Anchor) error {
	network := cmpOr(s.Network, "udp")
	if network != "udp" && network != "tcp" {
		return fmt.Errorf("cannot send anchor to syslog: network %q is not udp or tcp", network)
	}
	host := s.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	const pri = 10*8 + 5 // authpriv.notice
	msg := fmt.Sprintf("<%d>1 %s %s vigil - audit-anchor - %s", pri, a.Time.UTC().Format(time.RFC3339Nano), cmpOr(host, "-"), a.Line())
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, s.Addr)
	if err != nil {
		return fmt.Errorf("cannot reach syslog collector %s: %w", s.Addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if network == "tcp" {
		msg = fmt.Sprintf("%d %s", len(msg), msg)
	}
	if _, err := conn.Write([]byte(msg)); err != nil {
		return fmt.Errorf("cannot write to syslog collector %s: %w", s.Addr, err)
	}
	return nil
}

// WebhookSink posts anchors as JSON. With Secret, the body is signed:
// X-Vigil-Signature: sha256=<hex HMAC of the body>. A non-2xx answer is
// an error.
type WebhookSink struct {
	URL     string
	Headers map[string]string
	Secret  string
	// Client defaults to one with a 10 s timeout.
	Client *http.Client
}

// Name returns "webhook:<scheme://host>" (never a path or query, which
// may hold a secret).
func (s *WebhookSink) Name() string {
	u := s.URL
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.IndexAny(u[i+3:], "/?#"); j >= 0 {
			u = u[:i+3+j]
		}
		if k := strings.LastIndexByte(u, '@'); k >= 0 {
			u = u[:i+3] + u[k+1:]
		}
	}
	return "webhook:" + u
}

// Export posts the anchor.
func (s *WebhookSink) Export(ctx context.Context, a Anchor) error {
	c := s.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	body := a.Line()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("cannot build anchor request for %s: %w", s.Name(), err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range s.Headers {
		req.Header.Set(k, v)
	}
	if s.Secret != "" {
		m := hmac.New(sha256.New, []byte(s.Secret))
		m.Write(body)
		req.Header.Set("X-Vigil-Signature", "sha256="+hex.EncodeToString(m.Sum(nil)))
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("cannot post anchor to %s: %w", s.Name(), err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("cannot post anchor to %s: answered %s", s.Name(), resp.Status)
	}
	return nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

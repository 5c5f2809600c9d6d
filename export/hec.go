package export

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// HECOptions configure a Splunk HTTP Event Collector sink.
type HECOptions struct {
	// URL is the collector ("https://splunk:8088"); a URL without a path
	// posts to /services/collector/event.
	URL string
	// Token is the HEC token (Authorization: Splunk <token>).
	Token string
	// Index, Source and Sourcetype of the events (defaults: the token's
	// index, "vigil", "vigil:alert").
	Index, Source, Sourcetype string
	// Host of the events (default: none, Splunk uses the sender's).
	Host string
	// Client sends the requests (an egress policy's client in the server).
	Client *http.Client
}

// HEC posts alerts to Splunk's HTTP Event Collector, a batch per request:
// the event envelopes newline-joined.
type HEC struct {
	o   HECOptions
	url string
}

var _ Sink = (*HEC)(nil)

// NewHEC checks the options.
func NewHEC(o HECOptions) (*HEC, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("cannot use HEC URL %q: want http(s)://host:port", o.URL)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/services/collector/event"
	}
	if o.Token == "" {
		return nil, fmt.Errorf("cannot use HEC %s without a token", u.Host)
	}
	if o.Source == "" {
		o.Source = "vigil"
	}
	if o.Sourcetype == "" {
		o.Sourcetype = "vigil:alert"
	}
	if o.Client == nil {
		o.Client = http.DefaultClient
	}
	return &HEC{o: o, url: u.String()}, nil
}

// hecReply is the collector's answer. On a bad event Splunk indexes the
// events before it and reports its index (0-based) in invalid-event-number.
type hecReply struct {
	Text    string `json:"text"`
	Code    int    `json:"code"`
	Invalid *int   `json:"invalid-event-number"`
}

// Send posts docs as one request. 200 accepts all; 400 with an
// invalid-event-number accepts the events before it, drops it and retries
// those after; 503 (server busy), 429, 5xx and transport errors retry
// all; other statuses (401, 403 bad token) are errors (retried later).
func (h *HEC) Send(ctx context.Context, docs []Doc) error {
	var body bytes.Buffer
	for _, d := range docs {
		env := map[string]any{
			"time": json.Number(strconv.FormatFloat(float64(d.Time.UnixMilli())/1000, 'f', 3, 64)), "source": h.o.Source,
			"sourcetype": h.o.Sourcetype, "event": json.RawMessage(d.JSON),
		}
		if h.o.Index != "" {
			env["index"] = h.o.Index
		}
		if h.o.Host != "" {
			env["host"] = h.o.Host
		}
		b, err := json.Marshal(env)
		if err != nil {
			return fmt.Errorf("cannot encode HEC event: %w", err)
		}
		body.Write(b)
		body.WriteByte('\n')
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, &body)
	if err != nil {
		return fmt.Errorf("cannot build HEC request: %w", err)
	}
	req.Header.Set("Authorization", "Splunk "+h.o.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.o.Client.Do(req)
	if err != nil {
		return fmt.Errorf("cannot post to HEC: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var r hecReply
	json.Unmarshal(raw, &r)
	if resp.StatusCode == http.StatusBadRequest && r.Invalid != nil && *r.Invalid >= 0 && *r.Invalid < len(docs) {
		n := *r.Invalid
		ie := &ItemErrors{Drop: map[int]string{n: fmt.Sprintf("HEC code %d: %s", r.Code, r.Text)}}
		for i := n + 1; i < len(docs); i++ {
			ie.Retry = append(ie.Retry, i)
		}
		return ie
	}
	return fmt.Errorf("HEC answered %s: %s", resp.Status, bytes.TrimSpace(raw))
}

// Close does nothing: requests hold no connection of their own.
func (h *HEC) Close() error { return nil }

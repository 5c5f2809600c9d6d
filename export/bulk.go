package export

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// BulkOptions configure an Elasticsearch (or OpenSearch) bulk sink.
type BulkOptions struct {
	// URL is the cluster ("https://es:9200"); a URL without a path posts
	// to /_bulk. User and password in the URL are sent as basic auth.
	URL string
	// Token, when set, is an API key (Authorization: ApiKey <token>).
	Token string
	// Index (or data stream) the alerts go to (default "vigil-alerts").
	Index string
	// Client sends the requests (an egress policy's client in the server).
	Client *http.Client
}

// Bulk indexes alerts with Elasticsearch's bulk API: one "create" action
// per alert with the alert id as _id, so a resent alert is not indexed
// twice (its 409 conflict counts as accepted).
type Bulk struct {
	o   BulkOptions
	url string
}

var _ Sink = (*Bulk)(nil)

// NewBulk checks the options.
func NewBulk(o BulkOptions) (*Bulk, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("cannot use Elasticsearch URL %q: want http(s)://host:port", o.URL)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/_bulk"
	}
	if o.Index == "" {
		o.Index = "vigil-alerts"
	}
	if o.Client == nil {
		o.Client = http.DefaultClient
	}
	return &Bulk{o: o, url: u.String()}, nil
}

// BulkReply is the part of a bulk response the sink reads.
type BulkReply struct {
	Errors bool                        `json:"errors"`
	Items  []map[string]BulkItemResult `json:"items"`
}

// BulkItemResult is the result of one action.
type BulkItemResult struct {
	ID     string `json:"_id"`
	Status int    `json:"status"`
	Error  *struct {
		Type   string `json:"type"`
		Reason string `json:"reason"`
	} `json:"error"`
}

// ParseBulkReply reads a bulk response for n actions and says which
// failed: 409 (already indexed) is success, 429 and 5xx are retried,
// other failures dropped. It is an error when the response is not JSON or
// does not hold n items.
func ParseBulkReply(raw []byte, n int) (*ItemErrors, error) {
	var r BulkReply
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("cannot read bulk response: %w", err)
	}
	if len(r.Items) != n {
		return nil, fmt.Errorf("cannot read bulk response: %d items for %d actions", len(r.Items), n)
	}
	ie := &ItemErrors{Drop: map[int]string{}}
	for i, item := range r.Items {
		if len(item) != 1 {
			return nil, fmt.Errorf("cannot read bulk response: item %d has %d actions", i, len(item))
		}
		for _, res := range item {
			switch {
			case res.Status >= 200 && res.Status < 300, res.Status == http.StatusConflict:
			case res.Status == http.StatusTooManyRequests, res.Status >= 500:
				ie.Retry = append(ie.Retry, i)
			default:
				why := fmt.Sprintf("status %d", res.Status)
				if res.Error != nil {
					why += ": " + res.Error.Type + ": " + res.Error.Reason
				}
				ie.Drop[i] = why
			}
		}
	}
	if len(ie.Retry) == 0 && len(ie.Drop) == 0 {
		return nil, nil
	}
	return ie, nil
}

// Send posts docs as one bulk request and reads every item's result.
func (b *Bulk) Send(ctx context.Context, docs []Doc) error {
	var body bytes.Buffer
	for _, d := range docs {
		act, _ := json.Marshal(map[string]any{"create": map[string]string{"_index": b.o.Index, "_id": d.ID}})
		body.Write(act)
		body.WriteByte('\n')
		body.Write(d.JSON)
		body.WriteByte('\n')
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.url, &body)
	if err != nil {
		return fmt.Errorf("cannot build bulk request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if b.o.Token != "" {
		req.Header.Set("Authorization", "ApiKey "+b.o.Token)
	}
	resp, err := b.o.Client.Do(req)
	if err != nil {
		return fmt.Errorf("cannot post to Elasticsearch: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("elasticsearch answered %s: %s", resp.Status, bytes.TrimSpace(raw[:min(len(raw), 512)]))
	}
	ie, err := ParseBulkReply(raw, len(docs))
	if err != nil {
		return err
	}
	if ie != nil {
		return ie
	}
	return nil
}

// Close does nothing.
func (b *Bulk) Close() error { return nil }

package taxii

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-iot/vigil/feeds"
	"github.com/vigil-iot/vigil/feeds/stix"
	"github.com/vigil-iot/vigil/internal/egress"
)

// MediaType is the TAXII 2.1 media type, sent as Accept.
const MediaType = "application/taxii+json;version=2.1"

// Discovery is a server's discovery resource.
type Discovery struct {
	Title    string   `json:"title"`
	Default  string   `json:"default,omitempty"`
	APIRoots []string `json:"api_roots"`
}

// APIRoot is an API root's information resource.
type APIRoot struct {
	Title            string   `json:"title"`
	Versions         []string `json:"versions"`
	MaxContentLength int64    `json:"max_content_length"`
}

// Collection is one collection of an API root.
type Collection struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	CanRead  bool   `json:"can_read"`
	CanWrite bool   `json:"can_write"`
}

// Envelope is one page of objects.
type Envelope struct {
	More    bool              `json:"more"`
	Next    string            `json:"next,omitempty"`
	Objects []json.RawMessage `json:"objects"`
}

// Client talks to TAXII 2.1 servers.
type Client struct {
	// HTTP fetches the pages; nil means egress.DefaultClient (public
	// addresses only).
	HTTP *http.Client
	// Token, when set, is sent as a bearer token; else User and Password,
	// when set, as basic auth.
	Token          string
	User, Password string
	// PageSize is the limit asked per page (0: the server's choice).
	PageSize int
	// MaxPages bounds one collection walk (0: 10000).
	MaxPages int
	// MaxResponse bounds the bytes of one response (0: DefaultMaxResponse).
	MaxResponse int64
	// MaxTotal bounds the bytes of all the pages of one collection walk
	// (0: DefaultMaxTotal), as a feed read from a URL is bounded.
	MaxTotal int64
}

// DefaultMaxResponse bounds a response when Client.MaxResponse is 0.
const DefaultMaxResponse = 128 << 20

// DefaultMaxTotal bounds a collection walk when Client.MaxTotal is 0.
const DefaultMaxTotal = 1 << 30

// capReader reads at most n bytes more, then fails with errTooLarge.
type capReader struct {
	r io.Reader
	n int64
}

var errTooLarge = errors.New("response too large")

func (c *capReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		return 0, errTooLarge
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	return n, err
}

func (c *Client) get(ctx context.Context, u string, v any) (http.Header, error) {
	h, _, err := c.getN(ctx, u, v)
	return h, err
}

// getN is get that also returns how many bytes of the body it read.
func (c *Client) getN(ctx context.Context, u string, v any) (http.Header, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot build request for %s", egress.Redact(u))
	}
	req.Header.Set("Accept", MediaType)
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	} else if c.User != "" || c.Password != "" {
		req.SetBasicAuth(c.User, c.Password)
	}
	hc := c.HTTP
	if hc == nil {
		hc = egress.DefaultClient()
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot get %s: %w", egress.Redact(u), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// the status only: the body of whatever answered is not echoed
		return nil, 0, fmt.Errorf("cannot get %s: %s", egress.Redact(u), resp.Status)
	}
	max := c.MaxResponse
	if max <= 0 {
		max = DefaultMaxResponse
	}
	cr := &capReader{resp.Body, max + 1}
	if err := json.NewDecoder(cr).Decode(v); err != nil {
		if errors.Is(err, errTooLarge) {
			return nil, 0, fmt.Errorf("cannot decode %s: response larger than %d bytes", u, max)
		}
		return nil, 0, fmt.Errorf("cannot decode %s: %w", u, err)
	}
	return resp.Header, max + 1 - cr.n, nil
}

// resolve makes ref absolute against base, with a trailing slash.
func resolve(base, ref string) (string, error) {
	b, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("cannot resolve %q: %w", ref, err)
	}
	r, err := url.Parse(ref)
	if err != nil {
		return "", fmt.Errorf("cannot resolve %q against %s: %w", ref, base, err)
	}
	s := b.ResolveReference(r).String()
	if !strings.HasSuffix(s, "/") {
		s += "/"
	}
	return s, nil
}

// Discover reads the discovery resource at u ("https://host/taxii2/").
func (c *Client) Discover(ctx context.Context, u string) (Discovery, error) {
	var d Discovery
	_, err := c.get(ctx, u, &d)
	return d, err
}

// APIRoot reads an API root's information.
func (c *Client) APIRoot(ctx context.Context, root string) (APIRoot, error) {
	var a APIRoot
	_, err := c.get(ctx, root, &a)
	return a, err
}

// Collections lists an API root's collections.
func (c *Client) Collections(ctx context.Context, root string) ([]Collection, error) {
	var cs struct {
		Collections []Collection `json:"collections"`
	}
	u, err := resolve(root, "collections/")
	if err != nil {
		return nil, err
	}
	_, err = c.get(ctx, u, &cs)
	return cs.Collections, err
}

// Objects walks a collection's objects added after addedAfter (zero: all),
// page by page, calling fn for each page. It returns the
// X-TAXII-Date-Added-Last of the last page, to pass as addedAfter next time
// (addedAfter itself when the server sent none).
func (c *Client) Objects(ctx context.Context, root, collection string, addedAfter time.Time, fn func([]json.RawMessage) error) (time.Time, error) {
	base, err := resolve(root, "collections/"+url.PathEscape(collection)+"/objects/")
	if err != nil {
		return addedAfter, err
	}
	last := addedAfter
	next := ""
	max := c.MaxPages
	if max == 0 {
		max = 10000
	}
	maxTotal, total := c.MaxTotal, int64(0)
	if maxTotal <= 0 {
		maxTotal = DefaultMaxTotal
	}
	for page := 0; page < max; page++ {
		q := url.Values{}
		if !addedAfter.IsZero() {
			q.Set("added_after", addedAfter.UTC().Format(time.RFC3339Nano))
		}
		if c.PageSize > 0 {
			q.Set("limit", strconv.Itoa(c.PageSize))
		}
		if next != "" {
			q.Set("next", next)
		}
		u := base
		if len(q) > 0 {
			u += "?" + q.Encode()
		}
		var env Envelope
		h, n, err := c.getN(ctx, u, &env)
		if err != nil {
			return last, err
		}
		if total += n; total > maxTotal {
			return last, fmt.Errorf("cannot page %s: more than %d bytes in all (page %d)", base, maxTotal, page+1)
		}
		if s := h.Get("X-TAXII-Date-Added-Last"); s != "" {
			if t, err := time.Parse(time.RFC3339Nano, s); err == nil && t.After(last) {
				last = t
			}
		}
		if err := fn(env.Objects); err != nil {
			return last, err
		}
		if !env.More {
			return last, nil
		}
		if env.Next == "" {
			return last, fmt.Errorf("cannot page %s: more is true but next is empty", base)
		}
		next = env.Next
	}
	return last, fmt.Errorf("cannot page %s: more than %d pages", base, max)
}

// Fetch imports the indicators of one feed from a TAXII server: f.Source is
// the discovery URL (or an API root URL, ending in "/"), f.Collection the
// collection's id or title (empty: the only readable collection). The API
// root is the discovery's default, else its first. It returns the indicators,
// the result, and the added_after to use next time.
func (c *Client) Fetch(ctx context.Context, f *feeds.Feed, addedAfter, now time.Time) ([]feeds.Indicator, feeds.Result, time.Time, error) {
	var res feeds.Result
	root := f.Source
	if d, err := c.Discover(ctx, f.Source); err == nil && len(d.APIRoots) > 0 {
		pick := d.Default
		if pick == "" {
			pick = d.APIRoots[0]
		}
		if root, err = resolve(f.Source, pick); err != nil {
			return nil, res, addedAfter, err
		}
	}
	cols, err := c.Collections(ctx, root)
	if err != nil {
		return nil, res, addedAfter, err
	}
	var col *Collection
	var readable []string
	for i := range cols {
		if !cols[i].CanRead {
			continue
		}
		readable = append(readable, cols[i].ID)
		if f.Collection != "" && (cols[i].ID == f.Collection || strings.EqualFold(cols[i].Title, f.Collection)) {
			col = &cols[i]
		}
	}
	if col == nil {
		if f.Collection != "" || len(readable) != 1 {
			return nil, res, addedAfter, fmt.Errorf("cannot pick a collection %q at %s: readable ones are %v", f.Collection, root, readable)
		}
		for i := range cols {
			if cols[i].ID == readable[0] {
				col = &cols[i]
			}
		}
	}
	var out []feeds.Indicator
	last, err := c.Objects(ctx, root, col.ID, addedAfter, func(objs []json.RawMessage) error {
		ins, r := stix.Objects(objs, f, now)
		out = append(out, ins...)
		res.Add(r)
		return nil
	})
	return out, res, last, err
}

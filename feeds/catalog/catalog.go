package catalog

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/feeds"
	"github.com/vigil-iot/vigil/feeds/misp"
	"github.com/vigil-iot/vigil/feeds/plain"
	"github.com/vigil-iot/vigil/feeds/stix"
	"github.com/vigil-iot/vigil/feeds/taxii"
	"github.com/vigil-iot/vigil/internal/egress"
	"github.com/vigil-iot/vigil/store"
)

// Formats Import understands.
const (
	FormatSTIX     = "stix"
	FormatMISP     = "misp"
	FormatMISPFeed = "misp-feed"
	FormatList     = "list"
	FormatCSV      = "csv"
	FormatTAXII    = "taxii"
)

// FeedInfo describes one feed in the catalog.
type FeedInfo struct {
	Feed       feeds.Feed   `json:"feed"`
	Count      int          `json:"count"`
	Imported   time.Time    `json:"imported"`
	Result     feeds.Result `json:"result"`
	AddedAfter time.Time    `json:"added_after,omitzero"` // TAXII cursor
	Format     string       `json:"format"`
}

type snapshot struct {
	Info       FeedInfo          `json:"info"`
	Indicators []feeds.Indicator `json:"indicators"`
}

// Kind is the store catalog (store.Catalogs) holding the feeds: one
// document per feed, its info and indicators as JSON.
const Kind = "intel"

// refreshClaims is the claim kind that makes one node, of several sharing
// a store, re-import a feed that is due.
const refreshClaims = "intel-refresh"

// Catalog is the set of feeds and their indicators, kept in a store
// shared by every node: an import or removal on one node reaches the
// others at their next Sync. It is safe for concurrent use.
type Catalog struct {
	st    store.Catalogs
	log   *slog.Logger
	clock vigil.Clock
	// HTTP fetches URLs; nil means egress.DefaultClient (public addresses
	// only).
	HTTP *http.Client
	// SyncInterval is how often Run checks the store for changes made by
	// other nodes (default 5 s).
	SyncInterval time.Duration

	mu      sync.Mutex
	feeds   map[string]*snapshot
	version int64 // of the store's catalog when feeds was read
	// onChange is called with every valid indicator after each change.
	onChange func([]feeds.Indicator)
}

var feedName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidName reports whether name can name a feed: letters, digits, '.',
// '_' and '-', starting with a letter or digit, at most 64 characters; such
// a name is also safe as a file name.
func ValidName(name string) bool { return feedName.MatchString(name) }

// Open loads the catalog from st. Feeds that an older version saved as
// files under legacyDir/intel (one JSON file per feed) are imported into
// st first, unless st has a feed of that name, and the files renamed
// NAME.json.imported; legacyDir "" skips this. onChange, when not nil, is
// called once with the loaded set and again after every import or
// removal (on this node, or seen by Sync), with all indicators of all
// feeds; it must not block long (detect/intel's Load builds a new index
// and swaps it in).
func Open(ctx context.Context, st store.Catalogs, legacyDir string, log *slog.Logger, clock vigil.Clock, onChange func([]feeds.Indicator)) (*Catalog, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if clock == nil {
		clock = vigil.SystemClock{}
	}
	c := &Catalog{st: st, log: log.With("component", "intel"), clock: clock, feeds: map[string]*snapshot{}, onChange: onChange, version: -1}
	if legacyDir != "" {
		if err := c.importFiles(ctx, filepath.Join(legacyDir, "intel")); err != nil {
			return nil, err
		}
	}
	if _, err := c.Sync(ctx); err != nil { // the version is -1: it loads
		return nil, err
	}
	return c, nil
}

// importFiles imports the feed files of an older version from dir.
func (c *Catalog) importFiles(ctx context.Context, dir string) error {
	names, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(names) == 0 {
		return err
	}
	have, _, err := c.st.ListCatalogEntries(ctx, Kind)
	if err != nil {
		return err
	}
	for _, n := range names {
		raw, err := os.ReadFile(n)
		if err != nil {
			return fmt.Errorf("cannot read %s: %w", n, err)
		}
		var s snapshot
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("cannot decode %s: %w", n, err)
		}
		name := s.Info.Feed.Name
		if !slices.ContainsFunc(have, func(e store.CatalogEntry) bool { return e.Name == name }) {
			if _, err := c.st.PutCatalogEntry(ctx, Kind, name, raw); err != nil {
				return err
			}
			c.log.Info("feed imported from the data dir into the store", "feed", name, "file", n)
		}
		if err := os.Rename(n, n+".imported"); err != nil {
			return fmt.Errorf("cannot mark %s imported: %w", n, err)
		}
	}
	return nil
}

// Sync reloads the catalog from the store when another node changed it
// since it was read, and reports whether it did.
func (c *Catalog) Sync(ctx context.Context) (bool, error) {
	v, err := c.st.CatalogVersion(ctx, Kind)
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	same := v == c.version
	c.mu.Unlock()
	if same {
		return false, nil
	}
	entries, v, err := c.st.ListCatalogEntries(ctx, Kind)
	if err != nil {
		return false, err
	}
	loaded := make(map[string]*snapshot, len(entries))
	for _, e := range entries {
		var s snapshot
		if err := json.Unmarshal(e.Doc, &s); err != nil {
			return false, fmt.Errorf("cannot decode feed %s: %w", e.Name, err)
		}
		loaded[e.Name] = &s
	}
	c.mu.Lock()
	c.feeds, c.version = loaded, v
	c.mu.Unlock()
	c.notify()
	return true, nil
}

// saved notes the version a change of this node made: when no other
// node changed the catalog since it was read, the catalog is that
// version; otherwise the next Sync reloads it.
func (c *Catalog) savedLocked(v int64) {
	if v == c.version+1 {
		c.version = v
	}
}

// All returns every indicator of every feed.
func (c *Catalog) All() []feeds.Indicator {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.allLocked()
}

func (c *Catalog) allLocked() []feeds.Indicator {
	n := 0
	for _, s := range c.feeds {
		n += len(s.Indicators)
	}
	out := make([]feeds.Indicator, 0, n)
	for _, name := range c.namesLocked() {
		out = append(out, c.feeds[name].Indicators...)
	}
	return out
}

func (c *Catalog) namesLocked() []string {
	names := make([]string, 0, len(c.feeds))
	for n := range c.feeds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (c *Catalog) notify() {
	if c.onChange == nil {
		return
	}
	c.onChange(c.All())
}

// List describes every feed, by name.
func (c *Catalog) List() []FeedInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]FeedInfo, 0, len(c.feeds))
	for _, n := range c.namesLocked() {
		out = append(out, c.feeds[n].Info)
	}
	return out
}

// Indicators returns one feed's indicators. Returns ENOTFOUND for an
// unknown feed.
func (c *Catalog) Indicators(feed string) ([]feeds.Indicator, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.feeds[feed]
	if !ok {
		return nil, vigil.Errorf(vigil.ENOTFOUND, "no feed %q", feed)
	}
	return append([]feeds.Indicator(nil), s.Indicators...), nil
}

// Remove drops a feed and its indicators. Returns ENOTFOUND for an unknown
// feed.
func (c *Catalog) Remove(ctx context.Context, feed string) error {
	if _, err := c.Sync(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	if _, ok := c.feeds[feed]; !ok {
		c.mu.Unlock()
		return vigil.Errorf(vigil.ENOTFOUND, "no feed %q", feed)
	}
	c.mu.Unlock()
	v, err := c.st.DeleteCatalogEntry(ctx, Kind, feed)
	if vigil.ErrorCode(err) == vigil.ENOTFOUND {
		return vigil.Errorf(vigil.ENOTFOUND, "no feed %q", feed)
	} else if err != nil {
		return fmt.Errorf("cannot remove feed %s: %w", feed, err)
	}
	c.mu.Lock()
	delete(c.feeds, feed)
	c.savedLocked(v)
	c.mu.Unlock()
	c.log.Info("feed removed", "feed", feed)
	c.notify()
	return nil
}

// Import reads a feed from f.Source and replaces its indicators (a TAXII
// feed adds to them: it fetches only what was added since the last import).
// f.Name defaults to the source's base name. Returns EINVALID for a bad name
// or a source that is no known format; the result counts what was imported
// and rejected (with reasons).
func (c *Catalog) Import(ctx context.Context, f feeds.Feed) (feeds.Result, error) {
	if f.Name == "" {
		base := filepath.Base(strings.TrimRight(f.Source, "/"))
		f.Name = strings.TrimSuffix(base, filepath.Ext(base))
	}
	if !ValidName(f.Name) {
		return feeds.Result{}, vigil.Errorf(vigil.EINVALID, "bad feed name %q (letters, digits, '.', '_', '-')", f.Name)
	}
	if _, err := c.Sync(ctx); err != nil {
		return feeds.Result{}, err
	}
	now := c.clock.Now()
	var prev *snapshot
	c.mu.Lock()
	prev = c.feeds[f.Name]
	c.mu.Unlock()

	ins, res, format, cursor, err := c.read(ctx, &f, prev, now)
	if err != nil {
		return res, err
	}
	s := &snapshot{Info: FeedInfo{Feed: f, Count: len(ins), Imported: now, Result: res, AddedAfter: cursor, Format: format}, Indicators: ins}
	if format == FormatTAXII && prev != nil {
		s.Indicators = mergeByID(prev.Indicators, ins)
		s.Info.Count = len(s.Indicators)
	}
	raw, err := json.Marshal(s)
	if err != nil {
		return res, fmt.Errorf("cannot save feed %s: %w", f.Name, err)
	}
	v, err := c.st.PutCatalogEntry(ctx, Kind, f.Name, raw) // feed auth lives here
	if err != nil {
		return res, fmt.Errorf("cannot save feed %s: %w", f.Name, err)
	}
	c.mu.Lock()
	c.feeds[f.Name] = s
	c.savedLocked(v)
	c.mu.Unlock()
	c.log.Info("feed imported", "feed", f.Name, "format", format, "imported", res.Imported, "rejected", res.Rejected, "indicators", s.Info.Count)
	c.notify()
	return res, nil
}

// mergeByID keeps old indicators whose id is not in the new ones.
func mergeByID(old, add []feeds.Indicator) []feeds.Indicator {
	ids := make(map[string]bool, len(add))
	for _, in := range add {
		ids[in.ID] = true
	}
	out := make([]feeds.Indicator, 0, len(old)+len(add))
	for _, in := range old {
		if !ids[in.ID] {
			out = append(out, in)
		}
	}
	return append(out, add...)
}

func (c *Catalog) read(ctx context.Context, f *feeds.Feed, prev *snapshot, now time.Time) ([]feeds.Indicator, feeds.Result, string, time.Time, error) {
	format := f.Format
	if format == FormatTAXII {
		tc := &taxii.Client{HTTP: c.HTTP, Token: f.Token, User: f.User, Password: f.Password, PageSize: 1000}
		var after time.Time
		if prev != nil {
			after = prev.Info.AddedAfter
		}
		ins, res, last, err := tc.Fetch(ctx, f, after, now)
		if err != nil {
			return nil, res, format, after, vigil.Errorf(vigil.EINVALID, "feed %s: %v", f.Name, err)
		}
		return ins, res, format, last, nil
	}
	if format == FormatMISPFeed || format == "" && isMISPFeed(f.Source) {
		base := strings.TrimSuffix(f.Source, "manifest.json")
		open := func(ctx context.Context, name string) (io.ReadCloser, error) {
			return OpenSource(ctx, c.HTTP, f, joinSource(base, name))
		}
		ins, res, err := misp.ParseFeed(ctx, open, f, now)
		if err != nil {
			return nil, res, FormatMISPFeed, time.Time{}, vigil.Errorf(vigil.EINVALID, "feed %s: %v", f.Name, err)
		}
		return ins, res, FormatMISPFeed, time.Time{}, nil
	}
	rc, err := OpenSource(ctx, c.HTTP, f, f.Source)
	if err != nil {
		return nil, feeds.Result{}, format, time.Time{}, err
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 64*1024)
	if format == "" {
		format = sniff(br, f)
	}
	var ins []feeds.Indicator
	var res feeds.Result
	switch format {
	case FormatSTIX:
		ins, res, err = stix.Parse(br, f, now)
	case FormatMISP:
		ins, res, err = misp.Parse(br, f, now)
	case FormatCSV:
		ins, res, err = plain.ParseCSV(br, f, now)
	case FormatList:
		ins, res, err = plain.ParseList(br, f, now)
	default:
		return nil, res, format, time.Time{}, vigil.Errorf(vigil.EINVALID, "feed %s: unknown format %q (stix, misp, misp-feed, list, csv, taxii)", f.Name, format)
	}
	if err != nil {
		return nil, res, format, time.Time{}, vigil.Errorf(vigil.EINVALID, "feed %s: %v", f.Name, err)
	}
	return ins, res, format, time.Time{}, nil
}

func isMISPFeed(src string) bool {
	if strings.HasSuffix(src, "manifest.json") {
		return true
	}
	if st, err := os.Stat(src); err == nil && st.IsDir() {
		_, err := os.Stat(filepath.Join(src, "manifest.json"))
		return err == nil
	}
	return false
}

func joinSource(base, name string) string {
	if strings.HasPrefix(base, "http://") || strings.HasPrefix(base, "https://") {
		if !strings.HasSuffix(base, "/") {
			base += "/"
		}
		return base + name
	}
	return filepath.Join(base, name)
}

// sniff tells a feed's format from its first bytes.
func sniff(br *bufio.Reader, f *feeds.Feed) string {
	head, _ := br.Peek(4096)
	t := bytes.TrimLeft(head, " \t\r\n\xef\xbb\xbf")
	if len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		if bytes.Contains(head, []byte(`"bundle"`)) || bytes.Contains(head, []byte(`"spec_version"`)) {
			return FormatSTIX
		}
		return FormatMISP
	}
	if f.CSV != nil {
		return FormatCSV
	}
	return FormatList
}

// MaxFeedSize bounds what OpenSource reads from a URL.
const MaxFeedSize = 1 << 30

// OpenSource opens a file path or an http(s) URL, with the feed's bearer
// token or basic auth for URLs, and decompresses gzip content (NVD and
// other full feeds ship as .json.gz). URLs are fetched with hc (nil:
// egress.DefaultClient). Returns ENOTFOUND for a missing file and EINVALID
// for a URL that cannot be fetched (refused by the outbound policy, no
// such host, refused, ...), an HTTP error status or bad gzip data.
func OpenSource(ctx context.Context, hc *http.Client, f *feeds.Feed, src string) (io.ReadCloser, error) {
	rc, err := openRaw(ctx, hc, f, src)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(rc, 64*1024)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			rc.Close()
			return nil, vigil.Errorf(vigil.EINVALID, "cannot read gzip %s: %v", egress.Redact(src), err)
		}
		return struct {
			io.Reader
			io.Closer
		}{io.LimitReader(zr, MaxFeedSize), rc}, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{br, rc}, nil
}

func openRaw(ctx context.Context, hc *http.Client, f *feeds.Feed, src string) (io.ReadCloser, error) {
	if !strings.HasPrefix(src, "http://") && !strings.HasPrefix(src, "https://") {
		fh, err := os.Open(src)
		if os.IsNotExist(err) {
			return nil, vigil.Errorf(vigil.ENOTFOUND, "no file %s", src)
		} else if err != nil {
			return nil, fmt.Errorf("cannot open %s: %w", src, err)
		}
		return fh, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, vigil.Errorf(vigil.EINVALID, "bad url %s", egress.Redact(src))
	}
	if f != nil && f.Token != "" {
		req.Header.Set("Authorization", "Bearer "+f.Token)
	} else if f != nil && (f.User != "" || f.Password != "") {
		req.SetBasicAuth(f.User, f.Password)
	}
	if hc == nil {
		hc = egress.DefaultClient()
	}
	resp, err := hc.Do(req)
	if err != nil { // refused by the outbound policy, no such host, refused, timed out: the source's fault
		return nil, vigil.Errorf(vigil.EINVALID, "cannot get %s: %v", egress.Redact(src), err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, vigil.Errorf(vigil.EINVALID, "cannot get %s: %s", egress.Redact(src), resp.Status)
	}
	return struct {
		io.Reader
		io.Closer
	}{io.LimitReader(resp.Body, MaxFeedSize), resp.Body}, nil
}

// Run, until ctx ends, checks the store for changes of other nodes every
// SyncInterval, and re-imports every interval the feeds whose Refresh
// interval has passed since their last import.
func (c *Catalog) Run(ctx context.Context, interval time.Duration) error {
	every := c.SyncInterval
	if every <= 0 {
		every = 5 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	st := time.NewTicker(every)
	defer st.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-st.C:
			if _, err := c.Sync(ctx); err != nil && ctx.Err() == nil {
				c.log.Warn("cannot sync the intel catalog", "err", err)
			}
		case <-t.C:
			c.RefreshDue(ctx)
		}
	}
}

// RefreshDue re-imports the feeds whose refresh interval has passed, and
// returns how many it re-imported. Of nodes sharing the store, the one
// that claims a due feed's refresh first re-imports it. Failures are
// logged; the old indicators stay.
func (c *Catalog) RefreshDue(ctx context.Context) int {
	if _, err := c.Sync(ctx); err != nil {
		c.log.Warn("cannot sync the intel catalog", "err", err)
		return 0
	}
	now := c.clock.Now()
	var due []FeedInfo
	for _, fi := range c.List() {
		if fi.Feed.Refresh > 0 && !now.Before(fi.Imported.Add(fi.Feed.Refresh)) {
			due = append(due, fi)
		}
	}
	n := 0
	for _, fi := range due {
		mine, err := c.st.Claim(ctx, refreshClaims, fi.Feed.Name+"|"+fi.Imported.UTC().Format(time.RFC3339Nano), now)
		if err != nil {
			c.log.Warn("feed refresh failed", "feed", fi.Feed.Name, "err", err)
			continue
		} else if !mine {
			continue // another node refreshes it
		}
		if _, err := c.Import(ctx, fi.Feed); err != nil {
			c.log.Warn("feed refresh failed", "feed", fi.Feed.Name, "err", err)
			continue
		}
		n++
	}
	return n
}

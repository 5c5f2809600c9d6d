package repo

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/internal/egress"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/update"
)

// DefaultInterval is how often a repository is read when its config says
// nothing.
const DefaultInterval = time.Hour

// Repository is one configured repository.
type Repository struct {
	// Name names it in logs, errors and the artifacts' CreatedBy
	// ("repository:<name>").
	Name string `json:"name"`
	// URL is the index's URL (https, or http to a loopback address).
	URL string `json:"url"`
	// Interval is how often Run reads it (0: DefaultInterval).
	Interval time.Duration `json:"-"`
	// Products, when not empty, are the only products taken from it.
	Products []string `json:"products,omitempty"`
}

// Refusal is an index entry that was not stored, and why.
type Refusal struct {
	Product string `json:"product"`
	Version string `json:"version"`
	URL     string `json:"url"`
	Reason  string `json:"reason"`
}

// Result is what one sync of one repository did.
type Result struct {
	Repository string    `json:"repository"`
	At         time.Time `json:"at"`
	// Added are the artifacts stored, signed with the update key.
	Added []vigil.Artifact `json:"added"`
	// Present counts the entries already stored; Filtered those of
	// products the repository is not configured for.
	Present  int `json:"present"`
	Filtered int `json:"filtered"`
	// Refused are the entries that were not stored (hash mismatch, too
	// large, cannot be fetched, ...).
	Refused []Refusal `json:"refused"`
	// Error is why the index could not be read ("" when it was).
	Error string `json:"error,omitempty"`
}

// Status is a repository with the result of its last sync on this node.
type Status struct {
	Repository
	// Every is the interval, as Go writes a duration ("1h0m0s").
	Every string  `json:"interval"`
	Last  *Result `json:"last,omitempty"`
}

// Fetcher reads the repositories and stores their new artifacts. Its
// fields are set before first use. Sync and Run may be called
// concurrently: syncs run one at a time.
type Fetcher struct {
	Repositories []Repository
	Store        store.Artifacts
	// Key is the update key (never the command key).
	Key ed25519.PrivateKey
	// HTTP fetches indexes and artifacts; nil means egress.DefaultClient
	// (public addresses only). The node gives the client of its outbound
	// policy.
	HTTP   *http.Client
	Clock  vigil.Clock
	Logger *slog.Logger
	// MaxSize bounds an artifact (0: store.MaxArtifactSize; tests lower it).
	MaxSize int64
	// Audit, when set, records each artifact stored (AuditFetch) and each
	// entry refused (AuditRefuse), by actor "repository:<name>".
	Audit Auditor

	mu   sync.Mutex // one sync at a time; guards last
	last map[string]*Result
}

// Auditor records what a sync stored or refused (audit.Recorder is one).
type Auditor interface {
	RecordJSON(ctx context.Context, actor, action, object string, detail any) (vigil.AuditRecord, error)
}

// Audit actions of a sync (the admin route is audited as
// update_repository.sync besides).
const (
	AuditFetch  = "update_artifact.fetch"
	AuditRefuse = "update_artifact.refuse"
)

// ErrUnknownRepository is returned (wrapped in ENOTFOUND) by Sync for a
// name no repository has.
var ErrUnknownRepository = errors.New("no such repository")

func (f *Fetcher) log() *slog.Logger {
	if f.Logger == nil {
		return slog.Default()
	}
	return f.Logger
}

func (f *Fetcher) client() *http.Client {
	if f.HTTP == nil {
		return egress.DefaultClient()
	}
	return f.HTTP
}

func (f *Fetcher) maxSize() int64 {
	if f.MaxSize <= 0 || f.MaxSize > store.MaxArtifactSize {
		return store.MaxArtifactSize
	}
	return f.MaxSize
}

// List returns the repositories with their last result on this node.
func (f *Fetcher) List() []Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Status, 0, len(f.Repositories))
	for _, r := range f.Repositories {
		every := interval(r).String()
		// Readers see the list: a password in the URL stays in the config.
		r.URL = egress.Redact(r.URL)
		out = append(out, Status{Repository: r, Every: every, Last: f.last[r.Name]})
	}
	return out
}

// Sync reads the repository named name ("": every one) now and returns
// what each sync did. A repository whose index cannot be read has its
// Error set; the others go on. Returns ENOTFOUND for an unknown name and
// the context's error when ctx ends.
func (f *Fetcher) Sync(ctx context.Context, name string) ([]Result, error) {
	var repos []Repository
	for _, r := range f.Repositories {
		if name == "" || r.Name == name {
			repos = append(repos, r)
		}
	}
	if name != "" && len(repos) == 0 {
		return nil, vigil.Errorf(vigil.ENOTFOUND, "repository %q: %v", name, ErrUnknownRepository)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Result
	for _, r := range repos {
		res := f.syncOne(ctx, r)
		if err := ctx.Err(); err != nil {
			return out, err
		}
		if f.last == nil {
			f.last = map[string]*Result{}
		}
		f.last[r.Name] = &res
		out = append(out, res)
	}
	return out, nil
}

// Run syncs each repository at once and then every Interval until ctx
// ends; it checks what is due every tick (a minute, or the shortest
// interval when shorter). It returns ctx's error.
func (f *Fetcher) Run(ctx context.Context) error {
	tick := time.Minute
	for _, r := range f.Repositories {
		tick = min(tick, interval(r))
	}
	due := map[string]time.Time{}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		now := f.Clock.Now()
		for _, r := range f.Repositories {
			if d, ok := due[r.Name]; ok && now.Before(d) {
				continue
			}
			if _, err := f.Sync(ctx, r.Name); err != nil {
				return err
			}
			due[r.Name] = now.Add(interval(r))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func interval(r Repository) time.Duration {
	if r.Interval <= 0 {
		return DefaultInterval
	}
	return r.Interval
}

// syncOne reads one repository's index and stores its new artifacts.
func (f *Fetcher) syncOne(ctx context.Context, r Repository) Result {
	log := f.log().With("repository", r.Name)
	res := Result{Repository: r.Name, At: f.Clock.Now().UTC(), Added: []vigil.Artifact{}, Refused: []Refusal{}}
	base, ix, err := f.readIndex(ctx, r)
	if err != nil {
		res.Error = err.Error()
		log.Warn("cannot read the update repository", "err", err)
		return res
	}
	for i, e := range ix.Artifacts {
		if len(r.Products) > 0 && !slices.Contains(r.Products, e.Product) {
			res.Filtered++
			continue
		}
		present, err := f.present(ctx, e)
		if err != nil {
			res.Error = fmt.Sprintf("cannot list the stored artifacts: %v", err)
			log.Error("cannot list the stored artifacts", "err", err)
			return res
		}
		if present {
			res.Present++
			continue
		}
		a, err := f.fetchEntry(ctx, r, base, e)
		if ctx.Err() != nil {
			return res
		}
		if err != nil {
			err = fmt.Errorf("repository %s, entry %d (%s %s): %w", r.Name, i, e.Product, e.Version, err)
			res.Refused = append(res.Refused, Refusal{Product: e.Product, Version: e.Version, URL: egress.Redact(e.URL), Reason: err.Error()})
			log.Warn("update artifact refused", "product", e.Product, "version", e.Version, "err", err)
			f.audit(ctx, r, AuditRefuse, "repository:"+r.Name, res.Refused[len(res.Refused)-1])
			continue
		}
		res.Added = append(res.Added, a)
		f.audit(ctx, r, AuditFetch, "artifact:"+a.ID, map[string]string{"product": a.Product, "version": a.Version,
			"sha256": a.SHA256, "url": egress.Redact(e.URL)})
		log.Info("update artifact stored from repository", "id", a.ID, "product", a.Product, "version", a.Version, "sha256", a.SHA256)
	}
	return res
}

func (f *Fetcher) audit(ctx context.Context, r Repository, action, object string, detail any) {
	if f.Audit == nil {
		return
	}
	if _, err := f.Audit.RecordJSON(context.WithoutCancel(ctx), "repository:"+r.Name, action, object, detail); err != nil {
		f.log().Error("cannot audit", "action", action, "object", object, "err", err)
	}
}

// present reports whether an artifact of e's product, version and
// SHA-256 is stored.
func (f *Fetcher) present(ctx context.Context, e Entry) (bool, error) {
	as, err := f.Store.ListArtifacts(ctx, e.Product)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(as, func(a vigil.Artifact) bool {
		return a.Version == e.Version && a.SHA256 == e.SHA256
	}), nil
}

// readIndex fetches and parses a repository's index.
func (f *Fetcher) readIndex(ctx context.Context, r Repository) (*url.URL, Index, error) {
	base, err := url.Parse(r.URL)
	if err != nil {
		return nil, Index{}, fmt.Errorf("repository %s: bad url: %w", r.Name, err)
	}
	data, err := f.get(ctx, base, MaxIndexSize)
	if err != nil {
		return nil, Index{}, fmt.Errorf("repository %s: cannot get its index: %w", r.Name, err)
	}
	ix, err := ParseIndex(data)
	if err != nil {
		return nil, Index{}, fmt.Errorf("repository %s: %w", r.Name, err)
	}
	return base, ix, nil
}

// fetchEntry downloads an entry, checks its size and SHA-256 against the
// index and stores it.
func (f *Fetcher) fetchEntry(ctx context.Context, r Repository, base *url.URL, e Entry) (vigil.Artifact, error) {
	if e.Size > f.maxSize() {
		return vigil.Artifact{}, fmt.Errorf("size %d is over the %d bytes an artifact may have", e.Size, f.maxSize())
	}
	u, err := e.resolve(base)
	if err != nil {
		return vigil.Artifact{}, err
	}
	data, err := f.get(ctx, u, e.Size)
	if err != nil {
		return vigil.Artifact{}, err
	}
	if int64(len(data)) != e.Size {
		return vigil.Artifact{}, fmt.Errorf("%d bytes, not the %d of the index", len(data), e.Size)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != e.SHA256 {
		return vigil.Artifact{}, fmt.Errorf("sha256 mismatch: the bytes have %s, the index says %s", got, e.SHA256)
	}
	a := vigil.Artifact{ID: vigil.NewID(), Product: e.Product, Version: e.Version, Classes: e.Classes, Models: e.Models,
		Name: e.fileName(u), Created: f.Clock.Now().UTC(), CreatedBy: "repository:" + r.Name}
	return update.Add(ctx, f.Store, f.Key, a, data)
}

// get fetches u, reading at most limit bytes: a longer body is an error.
func (f *Fetcher) get(ctx context.Context, u *url.URL, limit int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("bad url %s", egress.Redact(u.String()))
	}
	resp, err := f.client().Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot get %s: %w", egress.Redact(u.String()), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("cannot get %s: %s", egress.Redact(u.String()), resp.Status)
	}
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("cannot get %s: %d bytes, over %d", egress.Redact(u.String()), resp.ContentLength, limit)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", egress.Redact(u.String()), err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("cannot get %s: over %d bytes", egress.Redact(u.String()), limit)
	}
	return data, nil
}

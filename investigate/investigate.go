package investigate

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/graph"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/vuln"
)

// Options configures an Investigator.
type Options struct {
	// Store is what is read. Required.
	Store store.Store
	// Findings returns the vulnerability findings of a device (nil: the
	// blast radius has no "same vulnerable software" reason).
	Findings func(deviceID string) []vuln.Finding
	// Clock tells the time of reports and default windows (default:
	// system clock).
	Clock vigil.Clock
	// Logger receives the package's logs (component=investigate is added).
	Logger *slog.Logger
}

// Investigator answers investigation questions. It is safe for concurrent
// use.
type Investigator struct {
	st       store.Store
	findings func(string) []vuln.Finding
	clock    vigil.Clock
	log      *slog.Logger

	// The inventory the blast radius reads, kept InventoryTTL (blast.go).
	invMu sync.Mutex
	invAt time.Time
	inv   []vigil.Device

	// The indicators read per incident, kept IndicatorTTL (campaign.go).
	indMu sync.Mutex
	ind   map[string]cachedIndicators
}

// New returns an Investigator.
func New(opts Options) *Investigator {
	if opts.Clock == nil {
		opts.Clock = vigil.SystemClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Investigator{st: opts.Store, findings: opts.Findings, clock: opts.Clock, log: opts.Logger.With("component", "investigate")}
}

// Graph returns the entity graph around q.Entity (graph.Walk).
func (iv *Investigator) Graph(ctx context.Context, q graph.Query) (graph.View, error) {
	return graph.Walk(ctx, iv.st, q)
}

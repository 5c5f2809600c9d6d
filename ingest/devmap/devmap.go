package devmap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-iot/vigil"
)

// FieldMappedFrom names the event field that said which device the event
// is about.
const FieldMappedFrom = "device.mapped_from"

// Index maps addresses and host names to device ids. It is immutable.
type Index struct {
	addrs map[netip.Addr]entry
	names map[string]entry
}

type entry struct {
	id   string
	seen time.Time
}

// NewIndex indexes devices: every address of their interfaces (an address
// or a prefix such as 192.0.2.7/24), their names and ids (case-folded;
// also the first label of a dotted name).
func NewIndex(devs []vigil.Device) *Index {
	ix := &Index{addrs: map[netip.Addr]entry{}, names: map[string]entry{}}
	put := func(m map[string]entry, k string, e entry) {
		if k == "" {
			return
		}
		if old, ok := m[k]; ok && old.seen.After(e.seen) {
			return
		}
		m[k] = e
	}
	for _, d := range devs {
		if d.ID == "" {
			continue
		}
		e := entry{id: d.ID, seen: d.LastSeen}
		for _, n := range d.Network {
			for _, s := range n.Addresses {
				a, err := netip.ParseAddr(s)
				if err != nil {
					p, perr := netip.ParsePrefix(s)
					if perr != nil {
						continue
					}
					a = p.Addr()
				}
				a = a.Unmap()
				if a.IsUnspecified() || a.IsLoopback() || a.IsLinkLocalUnicast() && a.Is6() {
					continue // shared by every device
				}
				if old, ok := ix.addrs[a]; ok && old.seen.After(e.seen) {
					continue
				}
				ix.addrs[a] = e
			}
		}
		for _, n := range []string{d.ID, d.Name} {
			n = strings.ToLower(strings.TrimSuffix(n, "."))
			put(ix.names, n, e)
			if short, _, ok := strings.Cut(n, "."); ok && hostLabel(short) {
				if _, taken := ix.names[short]; !taken {
					ix.names[short] = e
				}
			}
		}
	}
	return ix
}

// hostLabel tells whether s can be a host label (not the first part of an
// address).
func hostLabel(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return true
		}
	}
	return false
}

// Len returns the number of addresses and names indexed.
func (ix *Index) Len() (addrs, names int) { return len(ix.addrs), len(ix.names) }

// Map sets ev.DeviceID when ev has none, is not of kind cloud, and names a
// known device (see the package doc). It reports whether it did.
func (ix *Index) Map(ev *vigil.Event) bool {
	if ev.DeviceID != "" || ev.Kind == "cloud" {
		return false
	}
	for _, k := range []string{"host.hostname", "host.name"} {
		s, _ := ev.Fields[k].(string)
		if s == "" {
			continue
		}
		s = strings.ToLower(strings.TrimSuffix(s, "."))
		if e, ok := ix.names[s]; ok {
			return ix.set(ev, e.id, k)
		}
		if a, err := netip.ParseAddr(s); err == nil {
			if e, ok := ix.addrs[a.Unmap()]; ok {
				return ix.set(ev, e.id, k)
			}
		}
	}
	if ev.Network != nil {
		if e, ok := ix.addrs[ev.Network.SrcIP]; ok && ev.Network.SrcIP.IsValid() {
			return ix.set(ev, e.id, "source.ip")
		}
		if e, ok := ix.addrs[ev.Network.DstIP]; ok && ev.Network.DstIP.IsValid() {
			return ix.set(ev, e.id, "destination.ip")
		}
	}
	return false
}

func (ix *Index) set(ev *vigil.Event, id, from string) bool {
	ev.DeviceID = id
	if ev.Fields == nil {
		ev.Fields = map[string]any{}
	}
	ev.Fields[FieldMappedFrom] = from
	return true
}

// Publisher takes events (bus.Bus is one).
type Publisher interface {
	PublishEvents(ctx context.Context, events []vigil.Event) error
}

// Options configures a Mapper.
type Options struct {
	// Devices returns the inventory's devices. Required.
	Devices func(ctx context.Context) ([]vigil.Device, error)
	// Next receives the events, mapped. Required.
	Next Publisher
	// Every is how often Run reloads the devices (default 30s); an event
	// that names no known device also makes Run reload, at most every
	// MinEvery (default 5s), so a device added to the inventory is known
	// within seconds.
	Every, MinEvery time.Duration
	Logger          *slog.Logger
}

var _ Publisher = (*Mapper)(nil)

// Mapper maps the events it publishes with the latest Index. It is safe
// for concurrent use.
type Mapper struct {
	o      Options
	ix     atomic.Pointer[Index]
	miss   chan struct{}
	mu     sync.Mutex
	loaded time.Time
	mapped atomic.Int64
}

// New returns a Mapper with an empty index (call Refresh or Run).
func New(o Options) (*Mapper, error) {
	if o.Devices == nil || o.Next == nil {
		return nil, errors.New("devmap: Options.Devices and Options.Next are required")
	}
	if o.Every <= 0 {
		o.Every = 30 * time.Second
	}
	if o.MinEvery <= 0 {
		o.MinEvery = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Mapper{o: o, miss: make(chan struct{}, 1)}
	m.ix.Store(NewIndex(nil))
	return m, nil
}

// Refresh reloads the devices now.
func (m *Mapper) Refresh(ctx context.Context) error {
	devs, err := m.o.Devices(ctx)
	if err != nil {
		return fmt.Errorf("cannot list devices: %w", err)
	}
	ix := NewIndex(devs)
	m.ix.Store(ix)
	m.mu.Lock()
	m.loaded = time.Now()
	m.mu.Unlock()
	a, n := ix.Len()
	m.o.Logger.Debug("device index loaded", "devices", len(devs), "addresses", a, "names", n)
	return nil
}

// Run reloads the devices every Options.Every, and after a miss, until
// ctx ends. A failed reload is logged; the previous index stays.
func (m *Mapper) Run(ctx context.Context) error {
	t := time.NewTicker(m.o.Every)
	defer t.Stop()
	for {
		if err := m.Refresh(ctx); err != nil && ctx.Err() == nil {
			m.o.Logger.Warn("cannot reload the device index", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-m.miss:
			m.mu.Lock()
			wait := m.o.MinEvery - time.Since(m.loaded)
			m.mu.Unlock()
			if wait > 0 {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(wait):
				}
			}
		}
	}
}

// Mapped returns how many events were mapped.
func (m *Mapper) Mapped() int64 { return m.mapped.Load() }

// PublishEvents maps the events and passes them on.
func (m *Mapper) PublishEvents(ctx context.Context, events []vigil.Event) error {
	ix := m.ix.Load()
	missed := false
	for i := range events {
		ev := &events[i]
		if ix.Map(ev) {
			m.mapped.Add(1)
		} else if ev.DeviceID == "" && ev.Kind != "cloud" {
			missed = true
		}
	}
	if missed {
		select {
		case m.miss <- struct{}{}:
		default:
		}
	}
	return m.o.Next.PublishEvents(ctx, events)
}

package inventory

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/bus"
	"github.com/vigil-iot/vigil/store"
)

// DefaultGroup is the bus consumer group of the inventory stage.
const DefaultGroup = "inventory"

// DefaultLastSeenInterval is Options.LastSeenInterval when zero.
const DefaultLastSeenInterval = 10 * time.Second

// Options configure a Stage. Zero values take the defaults.
type Options struct {
	// Group is the bus consumer group (DefaultGroup when empty).
	Group string
	// LastSeenInterval: a device whose only change in a batch is a later
	// LastSeen is written only when its stored LastSeen is at least this
	// much older (event time). Negative writes every time.
	LastSeenInterval time.Duration
	// Logger gets the stage's logs (component=inventory).
	Logger *slog.Logger
	// Registerer registers the metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Stage keeps the inventory from events. Handle may be called concurrently
// for different partitions; all events of one device are in one partition.
type Stage struct {
	bus  bus.Bus
	st   store.Devices
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	devices map[string]*known

	created  *prometheus.CounterVec
	samples  prometheus.Counter
	writes   prometheus.Counter
	firmware prometheus.Counter
	rejected prometheus.Counter
}

// known is a device as last written to the store (as the store merged
// it), with what was written. Its operator-owned fields (Tags, a quarantined
// state) may be stale: they are never written back from here.
type known struct {
	d vigil.Device
	// stored is the LastSeen of the device as stored.
	stored time.Time
}

// NewStage returns an inventory stage reading b and writing st.
func NewStage(b bus.Bus, st store.Devices, opts Options) (*Stage, error) {
	if opts.Group == "" {
		opts.Group = DefaultGroup
	}
	if opts.LastSeenInterval == 0 {
		opts.LastSeenInterval = DefaultLastSeenInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Stage{
		bus:     b,
		st:      st,
		opts:    opts,
		log:     opts.Logger.With("component", "inventory"),
		devices: map[string]*known{},
		created: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_inventory_devices_created_total",
			Help: "Devices added to the inventory, by initial state.",
		}, []string{"state"}),
		samples: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_inventory_health_samples_total",
			Help: "Health samples appended to devices' history.",
		}),
		writes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_inventory_device_writes_total",
			Help: "Device records written to the store.",
		}),
		firmware: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_inventory_firmware_changes_total",
			Help: "Firmware version changes seen on known devices.",
		}),
		rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_inventory_rejected_fields_total",
			Help: "Inventory fields ignored because they could not be read.",
		}),
	}
	if r := opts.Registerer; r != nil {
		for _, m := range []prometheus.Collector{s.created, s.samples, s.writes, s.firmware, s.rejected} {
			if err := r.Register(m); err != nil {
				return nil, fmt.Errorf("cannot register inventory metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Run consumes events until ctx ends; it returns nil then, or the bus's error.
func (s *Stage) Run(ctx context.Context) error {
	s.log.Info("inventory stage started", "group", s.opts.Group)
	return s.bus.ConsumeEvents(ctx, s.opts.Group, s.Handle)
}

// pending is a device being updated by one Handle call.
type pending struct {
	d vigil.Device
	// r is the report written to the store: only what this batch's events
	// carry (the whole device when it is new), so that a cache gone stale
	// (another node wrote the device meanwhile) writes nothing old back.
	r       vigil.Device
	isNew   bool
	stored  time.Time // LastSeen as stored; zero for a device not stored yet
	changed bool      // something other than LastSeen changed
}

// Handle applies one batch of events to the inventory. It writes each
// changed device once and all health samples in one call, and updates its
// cache only when every write succeeded, so a failed batch can be
// redelivered. Events without a DeviceID are ignored; an unreadable
// inventory field is logged and skipped, the rest of the event applies.
func (s *Stage) Handle(ctx context.Context, _ int, events []vigil.Event) error {
	var order []string
	work := map[string]*pending{}
	var samples []vigil.Health
	for i := range events {
		ev := &events[i]
		if ev.DeviceID == "" {
			continue
		}
		p := work[ev.DeviceID]
		if p == nil {
			var err error
			if p, err = s.load(ctx, ev); err != nil {
				return err
			}
			work[ev.DeviceID] = p
			order = append(order, ev.DeviceID)
		}
		if h, ok := s.apply(p, ev); ok {
			samples = append(samples, h)
		}
	}

	// The devices are written merged into the stored ones (the store reads
	// and writes each in one transaction): the working copy comes from the
	// cache, which knows nothing of tags or a quarantine set since by an
	// operator or another node, and those fields are not the reports' to set.
	var (
		writes  []*pending
		reports []vigil.Device
	)
	for _, id := range order {
		p := work[id]
		if p.changed || p.stored.IsZero() ||
			(p.d.LastSeen.After(p.stored) && p.d.LastSeen.Sub(p.stored) >= s.opts.LastSeenInterval) {
			writes = append(writes, p)
			if p.isNew {
				reports = append(reports, p.d)
			} else {
				reports = append(reports, p.r)
			}
		}
	}
	if len(reports) > 0 {
		merged, err := s.st.MergeDeviceReports(ctx, reports)
		if err != nil {
			return fmt.Errorf("cannot store %d devices: %w", len(reports), err)
		}
		for i, p := range writes {
			p.d = merged[i]
		}
	}
	if len(samples) > 0 {
		if err := s.st.AddHealth(ctx, samples); err != nil {
			return fmt.Errorf("cannot store %d health samples: %w", len(samples), err)
		}
	}
	for _, p := range writes {
		p.stored = p.d.LastSeen
	}
	s.writes.Add(float64(len(writes)))
	s.samples.Add(float64(len(samples)))

	s.mu.Lock()
	for _, id := range order {
		p := work[id]
		s.devices[id] = &known{d: p.d, stored: p.stored}
	}
	s.mu.Unlock()
	return nil
}

// load returns the working copy of ev's device: from the cache, else from
// the store, else a new device.
func (s *Stage) load(ctx context.Context, ev *vigil.Event) (*pending, error) {
	s.mu.Lock()
	k := s.devices[ev.DeviceID]
	s.mu.Unlock()
	if k != nil {
		// The cached device is never mutated: apply replaces its fields
		// and slices, so a shallow copy is enough.
		return &pending{d: k.d, r: vigil.Device{ID: k.d.ID}, stored: k.stored}, nil
	}
	d, err := s.st.GetDevice(ctx, ev.DeviceID)
	switch {
	case err == nil:
		return &pending{d: d, r: vigil.Device{ID: d.ID}, stored: d.LastSeen}, nil
	case vigil.ErrorCode(err) != vigil.ENOTFOUND:
		return nil, fmt.Errorf("cannot read device %s: %w", ev.DeviceID, err)
	}
	state := vigil.StateActive
	if ev.Source == SourceSensor {
		state = vigil.StateDiscovered
	}
	s.created.WithLabelValues(string(state)).Inc()
	s.log.Info("new device", "device", ev.DeviceID, "state", state, "source", ev.Source)
	return &pending{
		d:       vigil.Device{ID: ev.DeviceID, State: state, FirstSeen: ev.Time, LastSeen: ev.Time},
		r:       vigil.Device{ID: ev.DeviceID},
		isNew:   true,
		changed: true,
	}, nil
}

// apply updates p from ev and returns the health sample ev carries, if
// any is new.
func (s *Stage) apply(p *pending, ev *vigil.Event) (vigil.Health, bool) {
	d, r := &p.d, &p.r
	if !ev.Time.IsZero() {
		if d.FirstSeen.IsZero() || ev.Time.Before(d.FirstSeen) {
			d.FirstSeen = ev.Time
			p.changed = true
		}
		if ev.Time.After(d.LastSeen) {
			d.LastSeen = ev.Time
		}
		if r.FirstSeen.IsZero() || ev.Time.Before(r.FirstSeen) {
			r.FirstSeen = ev.Time
		}
		if ev.Time.After(r.LastSeen) {
			r.LastSeen = ev.Time
		}
	}
	if ev.Source != SourceSensor {
		// The store keeps a quarantined or retired state (not the reports'
		// to change); any other becomes active.
		r.State = vigil.StateActive
		if d.State == vigil.StateDiscovered || d.State == vigil.StateOffline {
			d.State = vigil.StateActive
			p.changed = true
		}
	}
	switch ev.Kind {
	case vigil.KindHealth:
		h, ok := healthSample(ev)
		// A sample not newer than the latest is a redelivery (or late):
		// storing it again would duplicate history.
		if !ok || (d.Health != nil && !h.Time.After(d.Health.Time)) {
			return vigil.Health{}, false
		}
		d.Health = &h
		r.Health = &h
		p.changed = true
		return h, true
	case vigil.KindInventory:
		s.applyInventory(p, ev)
	}
	return vigil.Health{}, false
}

// applyInventory sets the inventory fields ev carries.
func (s *Stage) applyInventory(p *pending, ev *vigil.Event) {
	d, r := &p.d, &p.r
	set := func(dst, rep *string, v string) {
		if v == "" {
			return
		}
		*rep = v
		if *dst != v {
			*dst = v
			p.changed = true
		}
	}
	str := func(name string) string {
		v, _ := ev.FieldString(name)
		return v
	}
	name, version := str(FieldOSName), str(FieldOSVersion)
	switch {
	case name != "" && version != "":
		set(&d.OS, &r.OS, name+" "+version)
	case name != "":
		set(&d.OS, &r.OS, name)
	}
	set(&d.Kernel, &r.Kernel, str(FieldOSKernel))
	if fw := str(FieldFirmware); fw != "" && fw != d.Firmware {
		if d.Firmware != "" {
			s.firmware.Inc()
			s.log.Info("firmware changed", "device", d.ID, "from", d.Firmware, "to", fw, "event", ev.ID)
		}
		set(&d.Firmware, &r.Firmware, fw)
	}
	set(&d.Vendor, &r.Vendor, str(FieldVendor))
	set(&d.Model, &r.Model, str(FieldModel))
	set(&d.Class, &r.Class, str(FieldClass))
	set(&d.Name, &r.Name, str(FieldName))

	// A list the event carries replaces the stored one, even empty
	// (non-nil, so that the store's merge takes it).
	if sw, ok, err := software(ev); err != nil {
		s.reject(d.ID, err)
	} else if ok {
		r.Software = sw
		if sw == nil {
			r.Software = []vigil.Component{}
		}
		if !slices.Equal(sw, d.Software) {
			d.Software = sw
			p.changed = true
		}
	}
	if nets, ok, err := interfaces(ev); err != nil {
		s.reject(d.ID, err)
	} else if ok {
		r.Network = nets
		if nets == nil {
			r.Network = []vigil.NetIdentity{}
		}
		if !slices.EqualFunc(nets, d.Network, equalNet) {
			d.Network = nets
			p.changed = true
		}
	}
}

func (s *Stage) reject(device string, err error) {
	s.rejected.Inc()
	s.log.Warn("inventory field ignored", "device", device, "err", err)
}

func equalNet(a, b vigil.NetIdentity) bool {
	return a.Interface == b.Interface && a.MAC == b.MAC && slices.Equal(a.Addresses, b.Addresses)
}

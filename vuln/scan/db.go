package scan

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/feeds"
	"github.com/vigil-iot/vigil/feeds/sbom"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/vuln"
)

// Source kinds.
const (
	KindAdvisories = "advisories" // nvd, osv, csaf
	KindKEV        = "kev"
	KindVEX        = "vex"
	KindSBOM       = "sbom"
)

// SourceInfo describes one imported source.
type SourceInfo struct {
	Name     string       `json:"name"`
	Kind     string       `json:"kind"`
	Format   string       `json:"format"`
	Origin   string       `json:"origin"` // file or URL
	Imported time.Time    `json:"imported"`
	Count    int          `json:"count"`
	Result   feeds.Result `json:"result"`
}

// source is one persisted source.
type source struct {
	Info       SourceInfo          `json:"info"`
	Options    ImportOptions       `json:"options"` // for refresh (auth included: the file is 0600)
	Advisories []vuln.Advisory     `json:"advisories,omitempty"`
	KEV        []vuln.KEV          `json:"kev,omitempty"`
	VEX        []vuln.VEXStatement `json:"vex,omitempty"`
	SBOM       *sbom.SBOM          `json:"sbom,omitempty"`
}

// Listener is one way a device is reachable.
type Listener struct {
	Transport string `json:"transport"`
	Port      uint16 `json:"port"`
	// Process is the listening process (from the agent), when known.
	Process string `json:"process,omitempty"`
	// Seen is set when the sensor saw traffic to this port.
	Seen bool `json:"seen,omitempty"`
}

// TrendPoint is the state of findings on one day.
type TrendPoint struct {
	Day               string `json:"day"` // YYYY-MM-DD
	Findings          int    `json:"findings"`
	VulnerableDevices int    `json:"vulnerable_devices"`
	KEVFindings       int    `json:"kev_findings"`
	Critical          int    `json:"critical"`
}

// Store catalogs (store.Catalogs) of the DB: the sources, one document
// each (Kind), the trend (StateKind, document "trend"), and the claims of
// the findings alerted (AlertedClaims, by finding id) and of the refreshes
// of due sources (refreshClaims).
const (
	Kind          = "vuln"
	StateKind     = "vuln-state"
	AlertedClaims = "vuln-alerted"
	refreshClaims = "vuln-refresh"
)

// Config configures a DB.
type Config struct {
	// Store holds the sources, the trend and which findings alerted,
	// shared by every node (required).
	Store store.Catalogs
	// Dir is the data directory of an older version, whose files under
	// Dir/vuln (sources/*.json, state.json) Open imports into Store once
	// and renames *.imported; "" skips this.
	Dir   string
	Log   *slog.Logger
	Clock vigil.Clock
	// Registerer, when not nil, gets vigil_vuln_* metrics.
	Registerer prometheus.Registerer
	// HTTP fetches URLs (nil: egress.DefaultClient, public addresses only).
	HTTP *http.Client
	// Alert receives the alerts of new findings (KEV, or CVSS >= 9 and
	// exposed): of nodes sharing Store, the first to claim a finding
	// alerts it. It is called without the DB's lock held.
	Alert func(vigil.Alert)
	// SyncInterval is how often Run checks Store for sources changed by
	// other nodes (default 5 s).
	SyncInterval time.Duration
}

type devState struct {
	dev      vigil.Device
	listen   []Listener
	banners  []vigil.Component // from server banners the sensor saw
	findings []vuln.Finding
	keys     []string // product keys the device's components have
}

// DB is the vulnerability state. It is safe for concurrent use.
type DB struct {
	cfg Config
	dir string
	log *slog.Logger

	mu      sync.Mutex
	sources map[string]*source
	ix      *Index
	kev     map[string]vuln.KEV
	vex     map[string][]parsedVEX // by vuln id
	sboms   map[string][]vigil.Component
	devices map[string]*devState
	byKey   map[string]map[string]bool // product key → device ids
	alerted map[string]time.Time       // finding id → when alerted or seen claimed in the store
	version int64                      // of the store's Kind catalog when sources were read
	first   map[string]time.Time       // finding id → first seen (this process)
	trend   []TrendPoint

	mFindings prometheus.Gauge
	mRescan   prometheus.Histogram
}

type parsedVEX struct {
	st    *vuln.VEXStatement
	prods []vuln.VEXProduct
}

var sourceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// storeTimeout bounds the store calls made without a caller's context
// (under the DB's lock, from device updates).
const storeTimeout = 30 * time.Second

// Open loads the sources and the trend from cfg.Store, after importing
// the files of an older version under cfg.Dir/vuln.
func Open(cfg Config) (*DB, error) {
	if cfg.Store == nil {
		return nil, vigil.Errorf(vigil.EINVALID, "vulnerability DB: no store")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = vigil.SystemClock{}
	}
	db := &DB{
		cfg: cfg, dir: filepath.Join(cfg.Dir, "vuln"), log: cfg.Log.With("component", "vuln"),
		sources: map[string]*source{}, devices: map[string]*devState{}, byKey: map[string]map[string]bool{}, alerted: map[string]time.Time{}, first: map[string]time.Time{},
		version:   -1,
		mFindings: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vigil_vuln_findings", Help: "Open (not suppressed) vulnerability findings."}),
		mRescan:   prometheus.NewHistogram(prometheus.HistogramOpts{Name: "vigil_vuln_rescan_seconds", Help: "Duration of full rescans.", Buckets: prometheus.ExponentialBuckets(0.01, 4, 8)}),
	}
	if cfg.Registerer != nil {
		cfg.Registerer.MustRegister(db.mFindings, db.mRescan)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*storeTimeout)
	defer cancel()
	if cfg.Dir != "" {
		if err := db.importFiles(ctx); err != nil {
			return nil, err
		}
	}
	states, _, err := cfg.Store.ListCatalogEntries(ctx, StateKind)
	if err != nil {
		return nil, err
	}
	for _, e := range states {
		if e.Name == "trend" {
			if err := json.Unmarshal(e.Doc, &db.trend); err != nil {
				return nil, fmt.Errorf("cannot decode the vulnerability trend: %w", err)
			}
		}
	}
	// The findings alerted so far, in one read rather than a claim each
	// as devices come.
	if db.alerted, err = cfg.Store.Claims(ctx, AlertedClaims); err != nil {
		return nil, err
	}
	if _, err := db.Sync(ctx); err != nil {
		return nil, err
	}
	return db, nil
}

// importFiles imports the sources, the alerted findings and the trend an
// older version kept under db.dir (unless the store has a source or trend
// of that name) and renames the files *.imported.
func (db *DB) importFiles(ctx context.Context) error {
	names, _ := filepath.Glob(filepath.Join(db.dir, "sources", "*.json"))
	var have []store.CatalogEntry
	if len(names) > 0 {
		var err error
		if have, _, err = db.cfg.Store.ListCatalogEntries(ctx, Kind); err != nil {
			return err
		}
	}
	for _, n := range names {
		raw, err := os.ReadFile(n)
		if err != nil {
			return fmt.Errorf("cannot read %s: %w", n, err)
		}
		var s source
		if err := json.Unmarshal(raw, &s); err != nil {
			return fmt.Errorf("cannot decode %s: %w", n, err)
		}
		name := s.Info.Name
		if !slices.ContainsFunc(have, func(e store.CatalogEntry) bool { return e.Name == name }) {
			if _, err := db.cfg.Store.PutCatalogEntry(ctx, Kind, name, raw); err != nil {
				return err
			}
			db.log.Info("vulnerability source imported from the data dir into the store", "source", name, "file", n)
		}
		if err := os.Rename(n, n+".imported"); err != nil {
			return fmt.Errorf("cannot mark %s imported: %w", n, err)
		}
	}
	p := filepath.Join(db.dir, "state.json")
	raw, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("cannot read %s: %w", p, err)
	}
	var st struct {
		Alerted map[string]time.Time `json:"alerted"`
		Trend   []TrendPoint         `json:"trend"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("cannot decode %s: %w", p, err)
	}
	for id, at := range st.Alerted {
		if _, err := db.cfg.Store.Claim(ctx, AlertedClaims, id, at); err != nil {
			return err
		}
	}
	if len(st.Trend) > 0 {
		states, _, err := db.cfg.Store.ListCatalogEntries(ctx, StateKind)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(states, func(e store.CatalogEntry) bool { return e.Name == "trend" }) {
			doc, err := json.Marshal(st.Trend)
			if err != nil {
				return fmt.Errorf("cannot encode the vulnerability trend: %w", err)
			}
			if _, err := db.cfg.Store.PutCatalogEntry(ctx, StateKind, "trend", doc); err != nil {
				return err
			}
		}
	}
	if err := os.Rename(p, p+".imported"); err != nil {
		return fmt.Errorf("cannot mark %s imported: %w", p, err)
	}
	return nil
}

// Sync reloads the sources from the store when another node changed them
// since they were read, rematches every device and alerts what newly
// qualifies; it reports whether it reloaded.
func (db *DB) Sync(ctx context.Context) (bool, error) {
	v, err := db.cfg.Store.CatalogVersion(ctx, Kind)
	if err != nil {
		return false, err
	}
	db.mu.Lock()
	same := v == db.version
	db.mu.Unlock()
	if same {
		return false, nil
	}
	entries, v, err := db.cfg.Store.ListCatalogEntries(ctx, Kind)
	if err != nil {
		return false, err
	}
	loaded := make(map[string]*source, len(entries))
	for _, e := range entries {
		var s source
		if err := json.Unmarshal(e.Doc, &s); err != nil {
			return false, fmt.Errorf("cannot decode vulnerability source %s: %w", e.Name, err)
		}
		loaded[e.Name] = &s
	}
	db.mu.Lock()
	db.sources, db.version = loaded, v
	db.rebuildLocked()
	var alerts []vigil.Alert
	for _, st := range db.devices {
		alerts = append(alerts, db.rematchLocked(st)...)
	}
	db.recordTrendLocked()
	db.mu.Unlock()
	db.emit(alerts)
	return true, nil
}

// savedLocked notes the version a change of this node made: when no
// other node changed the sources since they were read, they are that
// version; otherwise the next Sync reloads them.
func (db *DB) savedLocked(v int64) {
	if v == db.version+1 {
		db.version = v
	}
}

// rebuildLocked rebuilds the index, KEV, VEX and SBOM tables from sources.
func (db *DB) rebuildLocked() {
	var ads []*vuln.Advisory
	db.kev = map[string]vuln.KEV{}
	db.vex = map[string][]parsedVEX{}
	db.sboms = map[string][]vigil.Component{}
	names := make([]string, 0, len(db.sources))
	for n := range db.sources {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		s := db.sources[n]
		for i := range s.Advisories {
			ads = append(ads, &s.Advisories[i])
		}
		for _, k := range s.KEV {
			db.kev[k.CVE] = k
		}
		for i := range s.VEX {
			st := &s.VEX[i]
			pv := parsedVEX{st: st}
			for _, p := range st.Products {
				if vp, err := vuln.ParseVEXProduct(p); err == nil {
					pv.prods = append(pv.prods, vp)
				}
			}
			db.vex[st.Vuln] = append(db.vex[st.Vuln], pv)
		}
		if s.SBOM != nil {
			k := sbomKey(s.SBOM.Vendor, s.SBOM.Model, s.SBOM.Firmware)
			db.sboms[k] = append(db.sboms[k], s.SBOM.Components...)
		}
	}
	db.ix = NewIndex(ads)
}

func sbomKey(vendor, model, firmware string) string {
	return vuln.NormalizeName(vendor) + "/" + vuln.NormalizeName(model) + "@" + firmware
}

// Sources lists the imported sources.
func (db *DB) Sources() []SourceInfo {
	db.mu.Lock()
	defer db.mu.Unlock()
	out := make([]SourceInfo, 0, len(db.sources))
	for _, s := range db.sources {
		out = append(out, s.Info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Advisories returns the advisories of every source (shared: do not
// modify).
func (db *DB) Advisories() []*vuln.Advisory {
	db.mu.Lock()
	defer db.mu.Unlock()
	var out []*vuln.Advisory
	for _, s := range db.sources {
		for i := range s.Advisories {
			out = append(out, &s.Advisories[i])
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// KEV returns the KEV entry of a CVE.
func (db *DB) KEV(cve string) (vuln.KEV, bool) {
	db.mu.Lock()
	defer db.mu.Unlock()
	k, ok := db.kev[cve]
	return k, ok
}

// Remove drops a source and rematches what it touched. Returns ENOTFOUND
// for an unknown source.
func (db *DB) Remove(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if _, err := db.Sync(ctx); err != nil {
		return err
	}
	v, err := db.cfg.Store.DeleteCatalogEntry(ctx, Kind, name)
	if vigil.ErrorCode(err) == vigil.ENOTFOUND {
		return vigil.Errorf(vigil.ENOTFOUND, "no vulnerability source %q", name)
	} else if err != nil {
		return fmt.Errorf("cannot remove source %s: %w", name, err)
	}
	db.mu.Lock()
	s := db.sources[name]
	delete(db.sources, name)
	db.savedLocked(v)
	alerts := db.afterChangeLocked(s, nil)
	db.mu.Unlock()
	db.emit(alerts)
	return nil
}

// put stores a source, rebuilds the tables and rematches the devices the
// old and new versions of the source touch.
func (db *DB) put(s *source) error {
	raw, err := json.Marshal(s) // source auth lives here
	if err != nil {
		return fmt.Errorf("cannot save source %s: %w", s.Info.Name, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if _, err := db.Sync(ctx); err != nil {
		return err
	}
	v, err := db.cfg.Store.PutCatalogEntry(ctx, Kind, s.Info.Name, raw)
	if err != nil {
		return fmt.Errorf("cannot save source %s: %w", s.Info.Name, err)
	}
	db.mu.Lock()
	old := db.sources[s.Info.Name]
	db.sources[s.Info.Name] = s
	db.savedLocked(v)
	alerts := db.afterChangeLocked(old, s)
	db.mu.Unlock()
	db.emit(alerts)
	return nil
}

// touched returns the devices a source concerns: those with a product the
// source's advisories name, those with findings for its KEV or VEX
// vulnerabilities, those of its SBOM's model and firmware.
func (db *DB) touchedLocked(s *source) map[string]bool {
	out := map[string]bool{}
	if s == nil {
		return out
	}
	for i := range s.Advisories {
		for _, af := range s.Advisories[i].Affected {
			for _, k := range affectedKeys(&af) {
				for id := range db.byKey[k] {
					out[id] = true
				}
			}
		}
	}
	vulns := map[string]bool{}
	for _, k := range s.KEV {
		vulns[k.CVE] = true
	}
	for _, v := range s.VEX {
		vulns[v.Vuln] = true
	}
	if len(vulns) > 0 {
		for id, d := range db.devices {
			for _, f := range d.findings {
				if vulns[f.Vuln] {
					out[id] = true
					break
				}
			}
		}
	}
	if s.SBOM != nil {
		k := sbomKey(s.SBOM.Vendor, s.SBOM.Model, s.SBOM.Firmware)
		for id, d := range db.devices {
			if sbomKey(d.dev.Vendor, d.dev.Model, d.dev.Firmware) == k {
				out[id] = true
			}
		}
	}
	return out
}

// affectedKeys are the product keys an affected entry can match, in the
// form devState.keys uses.
func affectedKeys(af *vuln.Affected) []string {
	var out []string
	if af.PURL != "" {
		if p, err := vuln.ParsePURL(af.PURL); err == nil {
			out = append(out, "purl:"+p.Key())
		}
	}
	if af.CPE != "" {
		if c, err := vuln.ParseCPE(af.CPE); err == nil {
			out = append(out, "cpe:"+c.Key())
		}
	}
	return out
}

// componentKeysCached is componentKeys, component by component through the
// rescan cache (nil: none).
func componentKeysCached(d *vigil.Device, comps []vigil.Component, ca *cache) []string {
	if ca == nil {
		return componentKeys(d, comps)
	}
	var out []string
	for i := range comps {
		k := cacheKey(d, &comps[i])
		ks, ok := ca.keys[k]
		if !ok {
			ks = componentKeys(d, comps[i:i+1])
			ca.keys[k] = ks
		}
		out = append(out, ks...)
	}
	return out
}

// componentKeys are the product keys a device's components can be matched
// under (see Index.Match).
func componentKeys(d *vigil.Device, comps []vigil.Component) []string {
	var out []string
	vendor := vuln.NormalizeName(d.Vendor)
	for _, c := range comps {
		if c.Type == "firmware" && c.Source == "device" {
			m := vuln.NormalizeName(d.Model)
			out = append(out, "cpe:"+vendor+":"+m, "cpe:"+vendor+":"+m+"_firmware")
			continue
		}
		if p, ok := ComponentPURL(d, &c); ok {
			out = append(out, "purl:"+p.Key())
			if ck, ok := PURLToCPE[p.Name]; ok && c.CPE == "" {
				out = append(out, "cpe:"+ck)
			}
		}
		if cp, err := vuln.ParseCPE(c.CPE); err == nil {
			out = append(out, "cpe:"+cp.Key())
		}
	}
	return out
}

func (db *DB) afterChangeLocked(old, cur *source) []vigil.Alert {
	ids := db.touchedLocked(old)
	db.rebuildLocked()
	for id := range db.touchedLocked(cur) {
		ids[id] = true
	}
	var alerts []vigil.Alert
	for id := range ids {
		if d, ok := db.devices[id]; ok {
			alerts = append(alerts, db.rematchLocked(d)...)
		}
	}
	db.recordTrendLocked()
	db.saveStateLocked()
	return alerts
}

func (db *DB) emit(alerts []vigil.Alert) {
	if db.cfg.Alert == nil {
		return
	}
	for _, a := range alerts {
		db.cfg.Alert(a)
	}
}

// UpdateDevice records a device's inventory (from agent.DeviceFromInventory
// or the store) and rematches it. It returns the device's findings.
func (db *DB) UpdateDevice(d vigil.Device) []vuln.Finding {
	db.mu.Lock()
	st, ok := db.devices[d.ID]
	if !ok {
		st = &devState{}
		db.devices[d.ID] = st
	}
	st.dev = d
	alerts := db.rematchLocked(st)
	out := append([]vuln.Finding(nil), st.findings...)
	db.recordTrendLocked()
	db.mu.Unlock()
	db.emit(alerts)
	return out
}

// RemoveDevice forgets a device and its findings.
func (db *DB) RemoveDevice(id string) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if st, ok := db.devices[id]; ok {
		db.unindexLocked(id, st)
		delete(db.devices, id)
	}
}

func (db *DB) unindexLocked(id string, st *devState) {
	for _, k := range st.keys {
		if m := db.byKey[k]; m != nil {
			delete(m, id)
			if len(m) == 0 {
				delete(db.byKey, k)
			}
		}
	}
}

// SetExposure replaces what is known of how a device is reachable and
// re-ranks its findings.
func (db *DB) SetExposure(deviceID string, ls []Listener) {
	db.mu.Lock()
	st, ok := db.devices[deviceID]
	if !ok {
		st = &devState{dev: vigil.Device{ID: deviceID}}
		db.devices[deviceID] = st
	}
	st.listen = append([]Listener(nil), ls...)
	alerts := db.rematchLocked(st)
	db.mu.Unlock()
	db.emit(alerts)
}

// Observe learns exposure from events: an agent's network/listen events
// (destination.port, network.transport, process.name) and traffic the
// sensor saw to a device (event.source "sensor" with a destination port,
// on the event's device). It rematches the device when something new was
// learnt. It is cheap for events that teach nothing.
func (db *DB) Observe(ev *vigil.Event) {
	if ev.DeviceID == "" || ev.Kind != vigil.KindNetwork && ev.Source != "sensor" {
		return
	}
	for _, f := range BannerFields {
		if b, ok := ev.Fields[f].(string); ok && b != "" {
			db.observeBanner(ev, b)
		}
	}
	var l Listener
	switch {
	case ev.Kind == vigil.KindNetwork && ev.Action == "listen":
		port, ok := ev.FieldNumber("destination.port")
		if !ok {
			return
		}
		l.Port = uint16(port)
		l.Transport, _ = ev.FieldString("network.transport")
		l.Process, _ = ev.FieldString("process.name")
	case ev.Source == "sensor" && ev.Network != nil && ev.Network.DstPort != 0:
		l = Listener{Transport: ev.Network.Transport, Port: ev.Network.DstPort, Seen: true}
	default:
		return
	}
	db.mu.Lock()
	st, ok := db.devices[ev.DeviceID]
	if !ok {
		st = &devState{dev: vigil.Device{ID: ev.DeviceID}}
		db.devices[ev.DeviceID] = st
	}
	if l.Seen && !hasAddr(&st.dev, ev.Network.DstIP.String()) {
		// Traffic counts only when the device is its destination (its
		// addresses are known from its inventory).
		db.mu.Unlock()
		return
	}
	for i, x := range st.listen {
		if x.Port == l.Port && x.Transport == l.Transport {
			if x.Seen || !l.Seen && (x.Process == l.Process || l.Process == "") {
				db.mu.Unlock()
				return
			}
			if l.Process == "" {
				l.Process = x.Process
			}
			l.Seen = l.Seen || x.Seen
			st.listen[i] = l
			goto rematch
		}
	}
	st.listen = append(st.listen, l)
rematch:
	alerts := db.rematchLocked(st)
	db.mu.Unlock()
	db.emit(alerts)
}

func hasAddr(d *vigil.Device, ip string) bool {
	for _, n := range d.Network {
		for _, a := range n.Addresses {
			if a == ip || strings.HasPrefix(a, ip+"/") {
				return true
			}
		}
	}
	return false
}

// BannerFields are the event fields Observe reads server banners from.
var BannerFields = []string{"http.server", "ssh.server.banner", "ssh.banner", "server.banner"}

// observeBanner adds the component a server banner names (see
// BannerComponent) to the device the event is about, as seen on its
// source port, and rematches it when new.
func (db *DB) observeBanner(ev *vigil.Event, banner string) {
	c, ok := BannerComponent(banner)
	if !ok {
		return
	}
	db.mu.Lock()
	st, ok := db.devices[ev.DeviceID]
	if !ok {
		st = &devState{dev: vigil.Device{ID: ev.DeviceID}}
		db.devices[ev.DeviceID] = st
	}
	for i, b := range st.banners {
		if b.Name == c.Name {
			if b.Version == c.Version {
				db.mu.Unlock()
				return
			}
			st.banners = append(st.banners[:i], st.banners[i+1:]...)
			break
		}
	}
	st.banners = append(st.banners, c)
	if ev.Network != nil && ev.Network.SrcPort != 0 {
		// A response: the server is the source and the sensor saw it answer.
		seen := false
		for _, l := range st.listen {
			seen = seen || l.Port == ev.Network.SrcPort && l.Process == c.Name
		}
		if !seen {
			st.listen = append(st.listen, Listener{Transport: ev.Network.Transport, Port: ev.Network.SrcPort, Process: c.Name, Seen: true})
		}
	}
	alerts := db.rematchLocked(st)
	db.mu.Unlock()
	db.emit(alerts)
}

// Rescan rematches every device against every advisory, in parallel, and
// returns how long it took.
func (db *DB) Rescan() time.Duration {
	start := time.Now()
	db.mu.Lock()
	states := make([]*devState, 0, len(db.devices))
	for _, st := range db.devices {
		states = append(states, st)
	}
	results := make([][]vuln.Finding, len(states))
	keys := make([][]string, len(states))
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ca := newCache()
			for i := w; i < len(states); i += workers {
				results[i], keys[i] = db.computeLocked(states[i], ca)
			}
		}()
	}
	wg.Wait()
	var alerts []vigil.Alert
	for i, st := range states {
		alerts = append(alerts, db.commitLocked(st, results[i], keys[i])...)
	}
	db.recordTrendLocked()
	db.saveStateLocked()
	db.mu.Unlock()
	db.emit(alerts)
	d := time.Since(start)
	db.mRescan.Observe(d.Seconds())
	return d
}

func (db *DB) rematchLocked(st *devState) []vigil.Alert {
	fs, keys := db.computeLocked(st, nil)
	return db.commitLocked(st, fs, keys)
}

// computeLocked matches one device; it only reads shared state, so
// several may run at once under the lock.
func (db *DB) computeLocked(st *devState, ca *cache) ([]vuln.Finding, []string) {
	d := &st.dev
	comps := Components(d, db.sboms[sbomKey(d.Vendor, d.Model, d.Firmware)])
	comps = append(comps, st.banners...)
	ms := db.ix.MatchCached(d, comps, ca)
	keys := componentKeysCached(d, comps, ca)
	if len(ms) == 0 {
		return nil, keys
	}
	type gk struct {
		vuln string
		comp int
	}
	byGroup := map[gk]*vuln.Finding{}
	var order []gk
	for _, m := range ms {
		ad := m.r.ad
		v := ad.CVE
		if v == "" {
			v = ad.ID
		}
		k := gk{v, m.comp}
		f, ok := byGroup[k]
		c := &comps[m.comp]
		if !ok {
			f = &vuln.Finding{ID: d.ID + "|" + v + "|" + c.Name, DeviceID: d.ID, Vuln: v, Summary: ad.Summary,
				Component: c.Name, ComponentVersion: c.Version}
			byGroup[k] = f
			order = append(order, k)
		}
		if ad.CVSS > f.CVSS {
			f.CVSS = ad.CVSS
		}
		if ad.ID != v && !contains(f.Aliases, ad.ID) {
			f.Aliases = append(f.Aliases, ad.ID)
		}
		for _, al := range ad.Aliases {
			if al != v && !contains(f.Aliases, al) {
				f.Aliases = append(f.Aliases, al)
			}
		}
		fixed := m.r.af.Fixed
		if fixed != "" && (f.FixedVersion == "" || vuln.Compare(m.r.eco, fixed, f.FixedVersion) < 0) {
			f.FixedVersion = fixed
		}
		if m.confidence > f.Confidence {
			f.Confidence = m.confidence
		}
		f.Evidence = append(f.Evidence, vuln.Evidence{Rule: m.rule, Advisory: ad.ID, Source: ad.Source,
			Component: describe(c), Matched: m.r.id, Versions: m.versions})
	}
	out := make([]vuln.Finding, 0, len(order))
	for _, k := range order {
		f := byGroup[k]
		f.Severity = vuln.SeverityName(f.CVSS)
		if kv, ok := db.kev[f.Vuln]; ok {
			f.KEV, f.KEVDue, f.KEVRansomware = true, kv.DueDate, kv.KnownRansomware
		}
		f.Suppressed = db.vexLocked(d, &comps[k.comp], f)
		db.expose(st, &comps[k.comp], f)
		out = append(out, *f)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Rank != out[j].Rank {
			return out[i].Rank > out[j].Rank
		}
		return out[i].ID < out[j].ID
	})
	return out, keys
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func describe(c *vigil.Component) string {
	s := c.Name + " " + c.Version
	if c.PURL != "" {
		s += " (" + c.PURL + ")"
	} else if c.CPE != "" {
		s += " (" + c.CPE + ")"
	}
	if c.Source != "" {
		s += " from " + c.Source
	}
	return s
}

// vexLocked returns why a finding is suppressed by a VEX statement, or "".
func (db *DB) vexLocked(d *vigil.Device, c *vigil.Component, f *vuln.Finding) string {
	for _, id := range append([]string{f.Vuln}, f.Aliases...) {
		for _, pv := range db.vex[id] {
			st := pv.st
			if st.Status != vuln.VEXNotAffected && st.Status != vuln.VEXFixed {
				continue
			}
			for _, p := range pv.prods {
				if vexApplies(p, d, c) {
					why := "vex " + st.Status
					if st.Justification != "" {
						why += " (" + st.Justification + ")"
					}
					if st.Source != "" {
						why += " from " + st.Source
					}
					return why
				}
			}
		}
	}
	return ""
}

func vexApplies(p vuln.VEXProduct, d *vigil.Device, c *vigil.Component) bool {
	switch {
	case p.PURL != nil:
		cp, ok := ComponentPURL(d, c)
		if !ok || cp.Key() != p.PURL.Key() {
			return false
		}
		v := cp.Version
		if v == "" {
			v = c.Version
		}
		return p.PURL.Version == "" || p.PURL.Version == v
	case p.CPE != nil:
		var key, v string
		if c.Type == "firmware" && c.Source == "device" {
			vendor, model := vuln.NormalizeName(d.Vendor), vuln.NormalizeName(d.Model)
			if p.CPE.Key() != vendor+":"+model && p.CPE.Key() != vendor+":"+model+"_firmware" {
				return false
			}
			return p.CPE.Version == "*" || p.CPE.Version == d.Firmware
		}
		cc, err := vuln.ParseCPE(c.CPE)
		if err != nil {
			return false
		}
		key, v = cc.Key(), c.Version
		if cc.Version != "*" && cc.Version != "-" {
			v = cc.Version
		}
		return key == p.CPE.Key() && (p.CPE.Version == "*" || p.CPE.Version == v)
	default: // firmware: the whole device model (and firmware)
		return vuln.NormalizeName(d.Vendor) == p.Vendor && vuln.NormalizeName(d.Model) == p.Model &&
			(p.Firmware == "" || p.Firmware == d.Firmware)
	}
}

// expose sets a finding's exposure and rank.
func (db *DB) expose(st *devState, c *vigil.Component, f *vuln.Finding) {
	base := f.CVSS
	if base == 0 {
		base = 5
	}
	f.Rank = base
	if f.KEV {
		f.Rank += 10
	}
	names := []string{strings.ToLower(c.Name)}
	if p, ok := ComponentPURL(&st.dev, c); ok {
		names = append(names, strings.ToLower(p.Name))
	}
	for _, l := range st.listen {
		if l.Process == "" {
			continue
		}
		lp := strings.ToLower(l.Process)
		for _, n := range names {
			if lp == n {
				f.Exposed, f.Exposure = true, fmt.Sprintf("listening %s/%d (%s)", orTCP(l.Transport), l.Port, l.Process)
				f.Rank += 5
				return
			}
		}
	}
	if c.Type == "firmware" && len(st.listen) > 0 {
		l := st.listen[0]
		how := "listening"
		if l.Seen {
			how = "traffic seen to"
		}
		f.Exposed, f.Exposure = true, fmt.Sprintf("device firmware; %s %s/%d", how, orTCP(l.Transport), l.Port)
		f.Rank += 2
		return
	}
	for _, l := range st.listen {
		if l.Seen && l.Process == "" {
			f.Exposure = fmt.Sprintf("device reachable: traffic seen to %s/%d", orTCP(l.Transport), l.Port)
			f.Rank += 1
			return
		}
	}
}

func orTCP(t string) string {
	if t == "" {
		return "tcp"
	}
	return t
}

// commitLocked installs a device's new findings and returns the alerts of
// the ones that newly qualify.
func (db *DB) commitLocked(st *devState, fs []vuln.Finding, keys []string) []vigil.Alert {
	id := st.dev.ID
	if !slices.Equal(st.keys, keys) {
		db.unindexLocked(id, st)
		st.keys = keys
		for _, k := range keys {
			m := db.byKey[k]
			if m == nil {
				m = map[string]bool{}
				db.byKey[k] = m
			}
			m[id] = true
		}
	}
	now := db.cfg.Clock.Now()
	var alerts []vigil.Alert
	for i := range fs {
		f := &fs[i]
		first, seen := db.first[f.ID]
		if !seen {
			first = now
			db.first[f.ID] = now
		}
		f.FirstSeen = first
		if f.Suppressed != "" {
			continue
		}
		if f.KEV || f.CVSS >= 9 && f.Exposed {
			if _, done := db.alerted[f.ID]; !done {
				if db.claimLocked(f.ID, now) {
					alerts = append(alerts, Alert(&st.dev, f, now))
				}
			}
		}
	}
	st.findings = fs
	return alerts
}

// claimLocked claims the alert of a finding in the store and reports
// whether this node won it (another node alerted it otherwise). When the
// store fails, the finding is not alerted now: the next rematch tries
// again.
func (db *DB) claimLocked(id string, now time.Time) bool {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	mine, err := db.cfg.Store.Claim(ctx, AlertedClaims, id, now)
	if err != nil {
		db.log.Warn("cannot claim the alert of a finding", "finding", id, "err", err)
		return false
	}
	db.alerted[id] = now
	return mine
}

// Alert is the alert for a finding: it names the remediation in fields a
// playbook turns into an update action.
func Alert(d *vigil.Device, f *vuln.Finding, now time.Time) vigil.Alert {
	why := "CVSS " + strconv.FormatFloat(f.CVSS, 'f', 1, 64)
	sev := vigil.SeverityHigh
	if f.KEV {
		why = "known exploited (CISA KEV, due " + f.KEVDue.Format(time.DateOnly) + ")"
		if f.Exposed || f.CVSS >= 9 {
			sev = vigil.SeverityCritical
		}
	} else if f.Exposed {
		sev = vigil.SeverityCritical
	}
	name := d.Name
	if name == "" {
		name = d.ID
	}
	title := f.Vuln + " on " + name + ": " + f.Component + " " + f.ComponentVersion + " is " + why
	fields := map[string]any{
		"vuln.id": f.Vuln, "vuln.cvss": f.CVSS, "vuln.kev": f.KEV, "vuln.confidence": f.Confidence,
		"finding.id": f.ID, "vuln.component": f.Component, "vuln.component_version": f.ComponentVersion,
		"vuln.rule": f.Evidence[0].Rule, "vuln.advisory": f.Evidence[0].Advisory, "vuln.evidence": f.Evidence[0].Component + " matches " + f.Evidence[0].Matched + " " + f.Evidence[0].Versions,
	}
	if f.KEV {
		fields["vuln.kev.due_date"] = f.KEVDue.Format(time.DateOnly)
	}
	if f.Exposure != "" {
		fields["vuln.exposure"] = f.Exposure
	}
	if f.FixedVersion != "" {
		title += "; update " + f.Component + " to ≥ " + f.FixedVersion
		fields["remediation.action"] = "update"
		fields["remediation.component"] = f.Component
		fields["remediation.version"] = f.FixedVersion
		fields["remediation.text"] = "update " + f.Component + " to ≥ " + f.FixedVersion
	}
	return vigil.Alert{
		DedupKey: "vuln|" + f.ID, Detector: "vuln", RuleID: "vuln:" + f.Vuln, Title: title, Severity: sev,
		Tags: []string{"vuln", "cve"}, DeviceID: d.ID, Entities: []string{"cve:" + f.Vuln},
		FirstEventTime: now, LastEventTime: now, Created: now, Count: 1, Fields: fields,
	}
}

// Filter selects findings.
type Filter struct {
	DeviceID string
	KEVOnly  bool
	// MinCVSS keeps findings with at least this score.
	MinCVSS float64
	// Suppressed includes findings a VEX statement suppresses.
	Suppressed bool
}

// Findings returns findings by rank, highest first.
func (db *DB) Findings(f Filter) []vuln.Finding {
	db.mu.Lock()
	defer db.mu.Unlock()
	var out []vuln.Finding
	for id, st := range db.devices {
		if f.DeviceID != "" && id != f.DeviceID {
			continue
		}
		for _, x := range st.findings {
			if x.Suppressed != "" && !f.Suppressed || f.KEVOnly && !x.KEV || x.CVSS < f.MinCVSS {
				continue
			}
			out = append(out, x)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Rank != out[j].Rank {
			return out[i].Rank > out[j].Rank
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Listeners returns how a device is known to be reachable (SetExposure,
// Observe), by transport and port; none for an unknown device.
func (db *DB) Listeners(deviceID string) []Listener {
	db.mu.Lock()
	defer db.mu.Unlock()
	st, ok := db.devices[deviceID]
	if !ok {
		return nil
	}
	out := slices.Clone(st.listen)
	slices.SortFunc(out, func(a, b Listener) int {
		return cmp.Or(cmp.Compare(a.Transport, b.Transport), cmp.Compare(a.Port, b.Port), cmp.Compare(a.Process, b.Process))
	})
	return out
}

// Devices returns the devices the DB knows, by id.
func (db *DB) Devices() []vigil.Device {
	db.mu.Lock()
	defer db.mu.Unlock()
	out := make([]vigil.Device, 0, len(db.devices))
	for _, st := range db.devices {
		out = append(out, st.dev)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Trend returns one point per day a change was recorded, oldest first.
func (db *DB) Trend() []TrendPoint {
	db.mu.Lock()
	defer db.mu.Unlock()
	return append([]TrendPoint(nil), db.trend...)
}

func (db *DB) recordTrendLocked() {
	p := TrendPoint{Day: db.cfg.Clock.Now().UTC().Format(time.DateOnly)}
	for _, st := range db.devices {
		n := 0
		for _, f := range st.findings {
			if f.Suppressed != "" {
				continue
			}
			n++
			if f.KEV {
				p.KEVFindings++
			}
			if f.CVSS >= 9 {
				p.Critical++
			}
		}
		p.Findings += n
		if n > 0 {
			p.VulnerableDevices++
		}
	}
	db.mFindings.Set(float64(p.Findings))
	if k := len(db.trend); k > 0 && db.trend[k-1].Day == p.Day {
		db.trend[k-1] = p
	} else {
		db.trend = append(db.trend, p)
		if len(db.trend) > 400 {
			db.trend = db.trend[len(db.trend)-400:]
		}
	}
}

// saveStateLocked saves the trend in the store (the last node to save a
// day's point wins: each computes it from the same devices).
func (db *DB) saveStateLocked() {
	doc, err := json.Marshal(db.trend)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
		_, err = db.cfg.Store.PutCatalogEntry(ctx, StateKind, "trend", doc)
		cancel()
	}
	if err != nil {
		db.log.Warn("cannot save state", "err", err)
	}
}

// Flush saves the trend (it is saved after source changes and rescans;
// call it on shutdown to keep device-driven changes). Alerted findings
// are claimed in the store as they alert.
func (db *DB) Flush() {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.recordTrendLocked()
	db.saveStateLocked()
}

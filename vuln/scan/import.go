package scan

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/feeds"
	"github.com/vigil-iot/vigil/feeds/catalog"
	"github.com/vigil-iot/vigil/feeds/csaf"
	"github.com/vigil-iot/vigil/feeds/kev"
	"github.com/vigil-iot/vigil/feeds/nvd"
	"github.com/vigil-iot/vigil/feeds/osv"
	"github.com/vigil-iot/vigil/feeds/sbom"
	"github.com/vigil-iot/vigil/feeds/vex"
)

// Formats Import understands.
const (
	FormatNVD  = "nvd"
	FormatOSV  = "osv"
	FormatKEV  = "kev"
	FormatCSAF = "csaf"
	FormatVEX  = "vex"
	FormatSBOM = "sbom"
)

// ImportOptions say what is imported and how.
type ImportOptions struct {
	// Name of the source (default: the file's base name without extension).
	// Importing under an existing name replaces that source.
	Name string
	// Format: nvd, osv, kev, csaf, vex or sbom; empty means detect.
	Format string
	// Auth for URLs.
	Token, User, Password string
	// Vendor, Model and Firmware say which devices an SBOM describes; they
	// default to the SBOM's own subject.
	Vendor, Model, Firmware string
	// Refresh, when set, re-imports the source that often (RefreshDue, Run).
	Refresh time.Duration
}

// Import reads a vulnerability source from a file or an http(s) URL,
// stores it under the data directory and rematches the devices it
// concerns. Returns EINVALID for an unreadable source or a bad name,
// ENOTFOUND for a missing file.
func (db *DB) Import(ctx context.Context, src string, o ImportOptions) (feeds.Result, error) {
	if o.Name == "" {
		base := filepath.Base(strings.TrimRight(src, "/"))
		if i := strings.IndexByte(base, '?'); i >= 0 {
			base = base[:i]
		}
		o.Name = strings.TrimSuffix(base, filepath.Ext(base))
	}
	if !sourceName.MatchString(o.Name) {
		return feeds.Result{}, vigil.Errorf(vigil.EINVALID, "bad source name %q (letters, digits, '.', '_', '-')", o.Name)
	}
	rc, err := catalog.OpenSource(ctx, db.cfg.HTTP, &feeds.Feed{Token: o.Token, User: o.User, Password: o.Password}, src)
	if err != nil {
		return feeds.Result{}, err
	}
	defer rc.Close()
	return db.ImportReader(rc, src, o)
}

// RefreshDue re-imports the sources whose Refresh interval has passed and
// returns how many it re-imported. Of nodes sharing the store, the one
// that claims a due source's refresh first re-imports it. Failures are
// logged; the old content stays.
func (db *DB) RefreshDue(ctx context.Context) int {
	if _, err := db.Sync(ctx); err != nil {
		db.log.Warn("cannot sync vulnerability sources", "err", err)
		return 0
	}
	now := db.cfg.Clock.Now()
	type due struct {
		origin string
		o      ImportOptions
		last   time.Time
	}
	var todo []due
	db.mu.Lock()
	for _, s := range db.sources {
		if o := s.Options; o.Refresh > 0 && !now.Before(s.Info.Imported.Add(o.Refresh)) {
			todo = append(todo, due{s.Info.Origin, o, s.Info.Imported})
		}
	}
	db.mu.Unlock()
	n := 0
	for _, d := range todo {
		mine, err := db.cfg.Store.Claim(ctx, refreshClaims, d.o.Name+"|"+d.last.UTC().Format(time.RFC3339Nano), now)
		if err != nil {
			db.log.Warn("source refresh failed", "source", d.o.Name, "err", err)
			continue
		} else if !mine {
			continue // another node refreshes it
		}
		if _, err := db.Import(ctx, d.origin, d.o); err != nil {
			db.log.Warn("source refresh failed", "source", d.o.Name, "err", err)
			continue
		}
		n++
	}
	return n
}

// Run, until ctx ends, checks the store for sources changed by other
// nodes every Config.SyncInterval, and calls RefreshDue every interval.
func (db *DB) Run(ctx context.Context, interval time.Duration) error {
	every := db.cfg.SyncInterval
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
			if _, err := db.Sync(ctx); err != nil && ctx.Err() == nil {
				db.log.Warn("cannot sync vulnerability sources", "err", err)
			}
		case <-t.C:
			db.RefreshDue(ctx)
		}
	}
}

// ImportReader is Import from a reader; origin is recorded as where it
// came from.
func (db *DB) ImportReader(r io.Reader, origin string, o ImportOptions) (feeds.Result, error) {
	if !sourceName.MatchString(o.Name) {
		return feeds.Result{}, vigil.Errorf(vigil.EINVALID, "bad source name %q (letters, digits, '.', '_', '-')", o.Name)
	}
	br := bufio.NewReaderSize(r, 64*1024)
	format := o.Format
	if format == "" {
		format = Sniff(br)
	}
	s := &source{Info: SourceInfo{Name: o.Name, Format: format, Origin: origin, Imported: db.cfg.Clock.Now()}, Options: o}
	var res feeds.Result
	var err error
	switch format {
	case FormatNVD:
		s.Info.Kind = KindAdvisories
		s.Advisories, res, err = nvd.Parse(br)
	case FormatOSV:
		s.Info.Kind = KindAdvisories
		s.Advisories, res, err = osv.Parse(br)
	case FormatCSAF:
		s.Info.Kind = KindAdvisories
		s.Advisories, res, err = csaf.Parse(br)
	case FormatKEV:
		s.Info.Kind = KindKEV
		s.KEV, res, err = kev.Parse(br)
	case FormatVEX:
		s.Info.Kind = KindVEX
		s.VEX, res, err = vex.Parse(br)
	case FormatSBOM:
		s.Info.Kind = KindSBOM
		var b sbom.SBOM
		b, res, err = sbom.Parse(br)
		if o.Vendor != "" {
			b.Vendor = o.Vendor
		}
		if o.Model != "" {
			b.Model = o.Model
		}
		if o.Firmware != "" {
			b.Firmware = o.Firmware
		}
		if err == nil && (b.Vendor == "" || b.Model == "" || b.Firmware == "") {
			err = fmt.Errorf("the SBOM does not name its device's vendor, model and firmware; give them")
		}
		s.SBOM = &b
	default:
		return res, vigil.Errorf(vigil.EINVALID, "source %s: unknown format %q (nvd, osv, kev, csaf, vex, sbom)", o.Name, format)
	}
	if err != nil {
		return res, vigil.Errorf(vigil.EINVALID, "source %s: %v", o.Name, err)
	}
	s.Info.Result = res
	s.Info.Count = res.Imported
	if err := db.put(s); err != nil {
		return res, err
	}
	db.log.Info("vulnerability source imported", "source", o.Name, "format", format, "imported", res.Imported, "rejected", res.Rejected)
	return res, nil
}

// Sniff tells a vulnerability document's format from its first 64 KiB.
func Sniff(br *bufio.Reader) string {
	head, _ := br.Peek(64 * 1024)
	has := func(s string) bool { return bytes.Contains(head, []byte(s)) }
	switch {
	case has(`"csaf_version"`):
		return FormatCSAF
	case has(`"catalogVersion"`) || has(`Known Exploited Vulnerabilities`):
		return FormatKEV
	case has(`"NVD_CVE"`) || has(`"resultsPerPage"`) || has(`"CVE_Items"`):
		return FormatNVD
	case has(`openvex`):
		return FormatVEX
	case has(`"bomFormat"`) && has(`"analysis"`):
		return FormatVEX
	case has(`"bomFormat"`) || has(`"spdxVersion"`):
		return FormatSBOM
	case has(`"affected"`) || has(`"vulns"`) || has(`"schema_version"`):
		return FormatOSV
	}
	return ""
}

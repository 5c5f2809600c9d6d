package collect

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/vigil-iot/vigil/wire"
)

// Package database paths, under Env.Root.
const (
	DpkgStatus = "/var/lib/dpkg/status"
	OpkgStatus = "/usr/lib/opkg/status"
	ApkDB      = "/lib/apk/db/installed"
)

// Packages fills inventory.software from the dpkg, opkg and apk
// databases that exist.
type Packages struct {
	Env Env

	cache map[string]pkgCache // by database path: parsed while unchanged
}

type pkgCache struct {
	mod   int64
	size  int64
	comps []wire.Component
}

// Name returns "packages".
func (p *Packages) Name() string { return "packages" }

// Collect adds every installed package.
func (p *Packages) Collect(_ context.Context, r *wire.Report) error {
	inv := ensureInventory(r)
	var errs []error
	for _, src := range []struct {
		path, name string
		parse      func(io.Reader) ([]wire.Component, error)
	}{
		{DpkgStatus, "dpkg", ParseDpkgStatus},
		{OpkgStatus, "opkg", ParseOpkgStatus},
		{"/var/lib/opkg/status", "opkg", ParseOpkgStatus},
		{ApkDB, "apk", ParseApkInstalled},
	} {
		path := p.Env.path(src.path)
		f, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("cannot read %s database: %w", src.name, err))
			continue
		}
		fi, err := f.Stat()
		if err == nil {
			if c, ok := p.cache[path]; ok && c.mod == fi.ModTime().UnixNano() && c.size == fi.Size() {
				f.Close()
				inv.Software = append(inv.Software, c.comps...)
				continue
			}
		}
		comps, perr := src.parse(f)
		f.Close()
		if perr != nil {
			errs = append(errs, fmt.Errorf("cannot parse %s: %w", src.path, perr))
		} else if err == nil {
			if p.cache == nil {
				p.cache = map[string]pkgCache{}
			}
			p.cache[path] = pkgCache{mod: fi.ModTime().UnixNano(), size: fi.Size(), comps: comps}
		}
		inv.Software = append(inv.Software, comps...)
	}
	return errors.Join(errs...)
}

// ParseDpkgStatus reads a dpkg status file: stanzas of "Field: value"
// lines separated by blank lines. Only packages whose Status ends in
// "installed" are returned.
func ParseDpkgStatus(r io.Reader) ([]wire.Component, error) {
	return parseStanzas(r, "dpkg", "deb")
}

// ParseOpkgStatus reads an opkg status file (the dpkg format; OpenWrt).
func ParseOpkgStatus(r io.Reader) ([]wire.Component, error) {
	return parseStanzas(r, "opkg", "opkg")
}

func parseStanzas(r io.Reader, source, purlType string) ([]wire.Component, error) {
	var (
		out                         []wire.Component
		name, version, status, arch string
		lastKey                     string
	)
	flush := func() {
		if name != "" && (status == "" || strings.HasSuffix(status, " installed")) {
			c := wire.Component{Name: name, Version: version, Type: "package", Source: source}
			c.PURL = "pkg:" + purlType + "/" + name + "@" + version
			if arch != "" {
				c.PURL += "?arch=" + arch
			}
			out = append(out, c)
		}
		name, version, status, arch, lastKey = "", "", "", "", ""
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		if line[0] == ' ' || line[0] == '\t' { // continuation of lastKey
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return out, fmt.Errorf("line %d: %q is not a \"Field: value\" line", n, line)
		}
		v = strings.TrimSpace(v)
		lastKey = k
		switch k {
		case "Package":
			name = v
		case "Version":
			version = v
		case "Status":
			status = v
		case "Architecture":
			arch = v
		}
	}
	_ = lastKey
	flush()
	if err := sc.Err(); err != nil {
		return out, err
	}
	return out, nil
}

// ParseApkInstalled reads Alpine's /lib/apk/db/installed: stanzas of
// one-letter "X:value" lines (P: name, V: version, A: arch).
func ParseApkInstalled(r io.Reader) ([]wire.Component, error) {
	var (
		out             []wire.Component
		name, ver, arch string
	)
	flush := func() {
		if name != "" {
			c := wire.Component{Name: name, Version: ver, Type: "package", Source: "apk", PURL: "pkg:apk/alpine/" + name + "@" + ver}
			if arch != "" {
				c.PURL += "?arch=" + arch
			}
			out = append(out, c)
		}
		name, ver, arch = "", "", ""
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if line == "" {
			flush()
			continue
		}
		if len(line) < 2 || line[1] != ':' {
			return out, fmt.Errorf("line %d: %q is not an \"X:value\" line", n, line)
		}
		switch line[0] {
		case 'P':
			name = line[2:]
		case 'V':
			ver = line[2:]
		case 'A':
			arch = line[2:]
		}
	}
	flush()
	return out, sc.Err()
}

package collect

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"

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
		name, version, status, arch []byte
	)
	flush := func() {
		if len(name) > 0 && (len(status) == 0 || bytes.HasSuffix(status, []byte(" installed"))) {
			out = append(out, component(source, "pkg:"+purlType+"/", name, version, arch))
		}
		name, version, status, arch = name[:0], version[:0], status[:0], arch[:0]
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		// Lines are read as bytes: only the four fields kept are copied
		// (descriptions and other fields are most of the file).
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			flush()
			continue
		}
		if line[0] == ' ' || line[0] == '\t' { // continuation of the previous field
			continue
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return slices.Clip(out), fmt.Errorf("line %d: %q is not a \"Field: value\" line", n, line)
		}
		v = bytes.TrimSpace(v)
		switch string(k) {
		case "Package":
			name = append(name[:0], v...)
		case "Version":
			version = append(version[:0], v...)
		case "Status":
			status = append(status[:0], v...)
		case "Architecture":
			arch = append(arch[:0], v...)
		}
	}
	flush()
	// The list stays cached for the process's life: exactly sized.
	out = slices.Clone(out)
	if err := sc.Err(); err != nil {
		return out, err
	}
	return out, nil
}

// component makes a package's component with one string allocation: the
// name and version are slices of its package URL
// (prefix+name@version[?arch=arch]), so a cached package list holds one
// string per package.
func component(source, prefix string, name, version, arch []byte) wire.Component {
	purl := prefix + string(name) + "@" + string(version)
	if len(arch) > 0 {
		purl += "?arch=" + string(arch)
	}
	n := len(prefix) + len(name)
	return wire.Component{Name: purl[len(prefix):n], Version: purl[n+1 : n+1+len(version)], Type: "package", Source: source, PURL: purl}
}

// ParseApkInstalled reads Alpine's /lib/apk/db/installed: stanzas of
// one-letter "X:value" lines (P: name, V: version, A: arch).
func ParseApkInstalled(r io.Reader) ([]wire.Component, error) {
	var (
		out             []wire.Component
		name, ver, arch []byte
	)
	flush := func() {
		if len(name) > 0 {
			out = append(out, component("apk", "pkg:apk/alpine/", name, ver, arch))
		}
		name, ver, arch = name[:0], ver[:0], arch[:0]
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if len(line) == 0 {
			flush()
			continue
		}
		if len(line) < 2 || line[1] != ':' {
			return slices.Clip(out), fmt.Errorf("line %d: %q is not an \"X:value\" line", n, line)
		}
		switch line[0] {
		case 'P':
			name = append(name[:0], line[2:]...)
		case 'V':
			ver = append(ver[:0], line[2:]...)
		case 'A':
			arch = append(arch[:0], line[2:]...)
		}
	}
	flush()
	return slices.Clone(out), sc.Err()
}

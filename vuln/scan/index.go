package scan

import (
	"strings"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/vuln"
)

// PURLToCPE is the explicit table from package names (of non-distribution
// purls: generic, opkg) to CPE vendor:product. Only names listed here are
// matched against CPE-only advisories (NVD); anything else needs a purl or
// CPE advisory of its own. Distribution packages (deb, apk, rpm) are left
// out on purpose: distributions backport fixes, so their own advisories
// (OSV) are the ones to trust.
var PURLToCPE = map[string]string{
	"openssl": "openssl:openssl", "busybox": "busybox:busybox", "dropbear": "dropbear_ssh_project:dropbear_ssh",
	"dnsmasq": "thekelleys:dnsmasq", "openssh": "openbsd:openssh", "curl": "haxx:curl", "libcurl": "haxx:libcurl",
	"lighttpd": "lighttpd:lighttpd", "mosquitto": "eclipse:mosquitto", "hostapd": "w1.fi:hostapd",
	"wpa_supplicant": "w1.fi:wpa_supplicant", "zlib": "zlib:zlib", "sqlite": "sqlite:sqlite", "haproxy": "haproxy:haproxy",
	"nginx": "f5:nginx", "libupnp": "pupnp_project:pupnp", "miniupnpd": "miniupnp_project:miniupnpd",
	"samba": "samba:samba", "ntp": "ntp:ntp", "openvpn": "openvpn:openvpn", "wolfssl": "wolfssl:wolfssl",
	"mbedtls": "arm:mbed_tls", "expat": "libexpat_project:libexpat", "glibc": "gnu:glibc", "uclibc-ng": "uclibc-ng_project:uclibc-ng",
}

// ref is one Affected entry of one advisory, with what matching needs
// pre-parsed.
type ref struct {
	ad   *vuln.Advisory
	af   *vuln.Affected
	part string // CPE part
	ver  string // CPE exact version ("" when * or -)
	upd  string // CPE update ("" when * or -)
	eco  vuln.Ecosystem
	id   string // the purl or CPE as written
}

// Index finds the advisories that name a product.
type Index struct {
	purls map[string][]ref // purl key → refs
	cpes  map[string][]ref // vendor:product → refs
	n     int
}

// NewIndex indexes advisories. Affected entries that name no product they
// can be matched by (bad purl or CPE) are skipped.
func NewIndex(ads []*vuln.Advisory) *Index {
	ix := &Index{purls: map[string][]ref{}, cpes: map[string][]ref{}}
	for _, a := range ads {
		ix.n++
		for k := range a.Affected {
			af := &a.Affected[k]
			if af.PURL != "" {
				p, err := vuln.ParsePURL(af.PURL)
				if err != nil {
					continue
				}
				eco := af.Ecosystem
				if eco == "" {
					eco = vuln.EcosystemOf(p.Type)
				}
				ix.purls[p.Key()] = append(ix.purls[p.Key()], ref{ad: a, af: af, eco: eco, id: af.PURL})
			}
			if af.CPE != "" {
				c, err := vuln.ParseCPE(af.CPE)
				if err != nil {
					continue
				}
				eco := af.Ecosystem
				if eco == "" {
					eco = vuln.Generic
				}
				r := ref{ad: a, af: af, part: c.Part, eco: eco, id: af.CPE}
				if c.Version != "*" && c.Version != "-" {
					r.ver = c.Version
				}
				if c.Update != "*" && c.Update != "-" {
					r.upd = c.Update
				}
				ix.cpes[c.Key()] = append(ix.cpes[c.Key()], r)
			}
		}
	}
	return ix
}

// Len is the number of advisories indexed.
func (ix *Index) Len() int { return ix.n }

// match is one raw match of a component against one affected entry.
type match struct {
	r          *ref
	rule       string
	comp       int // index in the component list
	key        string
	versions   string
	confidence float64
}

// affects reports whether version v is affected by r, and which of the
// entry's version statements contains it.
func (r *ref) affects(v string) (string, bool) {
	if v == "" {
		return "", false
	}
	for _, na := range r.af.NotAffected {
		if vuln.Compare(r.eco, v, na) == 0 {
			return "", false
		}
	}
	if r.ver != "" {
		want := r.ver
		if r.upd != "" {
			want += r.upd
		}
		if vuln.Compare(r.eco, v, want) == 0 || r.upd == "" && vuln.Compare(r.eco, v, r.ver) == 0 {
			return "= " + want, true
		}
	}
	for _, x := range r.af.Versions {
		if vuln.Compare(r.eco, v, x) == 0 {
			return "= " + x, true
		}
	}
	for _, rg := range r.af.Ranges {
		if rg.Contains(r.eco, v) {
			return rg.String(), true
		}
	}
	return "", false
}

// upstream strips a packaging revision from a version: "2022.82-2" →
// "2022.82" (opkg), "1.36.1-r5" → "1.36.1" (apk).
func upstream(typ, v string) string {
	switch typ {
	case "opkg":
		if i := strings.LastIndexByte(v, '-'); i > 0 {
			return v[:i]
		}
	case "apk":
		if i := strings.LastIndex(v, "-r"); i > 0 {
			return v[:i]
		}
	}
	return v
}

// ComponentPURL parses a component's purl. A purl without a namespace
// (the agent writes "pkg:deb/openssl@...") gets the one its distribution
// implies, by an explicit rule: deb from the device's OS name (debian,
// ubuntu, raspbian), opkg → openwrt, apk → alpine.
func ComponentPURL(d *vigil.Device, c *vigil.Component) (vuln.PURL, bool) {
	if c.PURL == "" {
		return vuln.PURL{}, false
	}
	p, err := vuln.ParsePURL(c.PURL)
	if err != nil {
		return p, false
	}
	if p.Namespace == "" {
		switch p.Type {
		case "deb":
			os, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(d.OS)), " ")
			switch os {
			case "debian", "ubuntu", "raspbian":
				p.Namespace = os
			}
		case "opkg":
			p.Namespace = "openwrt"
		case "apk":
			p.Namespace = "alpine"
		}
	}
	return p, true
}

// Components returns what a device runs, as matching sees it: its
// software, the SBOM components of its model and firmware, and its
// firmware itself (when vendor, model and firmware are known).
func Components(d *vigil.Device, sbom []vigil.Component) []vigil.Component {
	out := make([]vigil.Component, 0, len(d.Software)+len(sbom)+1)
	out = append(out, d.Software...)
	out = append(out, sbom...)
	if d.Vendor != "" && d.Model != "" && d.Firmware != "" {
		out = append(out, vigil.Component{Name: d.Model, Version: d.Firmware, Type: "firmware", Source: "device"})
	}
	return out
}

// Match returns the matches of a device's components (see Components)
// by the explicit rules.
func (ix *Index) Match(d *vigil.Device, comps []vigil.Component) []match {
	return ix.MatchCached(d, comps, nil)
}

// cache memoizes the matches of identical components across the devices
// of one rescan (devices of one model share them).
type cache struct {
	m    map[string][]match
	keys map[string][]string
}

func newCache() *cache { return &cache{m: map[string][]match{}, keys: map[string][]string{}} }

func cacheKey(d *vigil.Device, c *vigil.Component) string {
	if c.Type == "firmware" && c.Source == "device" {
		return "fw\x00" + d.Vendor + "\x00" + d.Model + "\x00" + c.Version
	}
	k := c.PURL + "\x00" + c.CPE + "\x00" + c.Version
	if strings.HasPrefix(c.PURL, "pkg:deb/") {
		k += "\x00" + d.OS // the namespace may come from the OS
	}
	return k
}

// MatchCached is Match with a cache (nil: none).
func (ix *Index) MatchCached(d *vigil.Device, comps []vigil.Component, ca *cache) []match {
	var out []match
	for i := range comps {
		c := &comps[i]
		var ms []match
		if ca != nil {
			k := cacheKey(d, c)
			var ok bool
			if ms, ok = ca.m[k]; !ok {
				ms = ix.matchOne(d, c)
				ca.m[k] = ms
			}
		} else {
			ms = ix.matchOne(d, c)
		}
		for _, m := range ms {
			m.comp = i
			out = append(out, m)
		}
	}
	return out
}

func (ix *Index) matchOne(d *vigil.Device, c *vigil.Component) []match {
	var out []match
	vendor := vuln.NormalizeName(d.Vendor)
	if c.Type == "firmware" && c.Source == "device" {
		model := vuln.NormalizeName(d.Model)
		for _, key := range []string{vendor + ":" + model, vendor + ":" + model + "_firmware"} {
			for k := range ix.cpes[key] {
				r := &ix.cpes[key][k]
				if r.part == "a" {
					continue // an application CPE is not the device's firmware
				}
				if vs, ok := r.affects(c.Version); ok {
					out = append(out, match{r: r, rule: vuln.RuleFirmware, key: "firmware:" + key, versions: vs, confidence: 0.85})
				}
			}
		}
		return out
	}
	if c.PURL != "" {
		if p, ok := ComponentPURL(d, c); ok {
			v := p.Version
			if v == "" {
				v = c.Version
			}
			key := p.Key()
			for k := range ix.purls[key] {
				r := &ix.purls[key][k]
				if vs, ok := r.affects(v); ok {
					out = append(out, match{r: r, rule: vuln.RulePURL, key: "purl:" + key, versions: vs, confidence: 0.95})
				}
			}
			if c.CPE == "" && (p.Type == "generic" || p.Type == "opkg") {
				if ck, ok := PURLToCPE[p.Name]; ok {
					uv := upstream(p.Type, v)
					for k := range ix.cpes[ck] {
						r := &ix.cpes[ck][k]
						if r.part == "o" || r.part == "h" {
							continue
						}
						if vs, ok := r.affects(uv); ok {
							out = append(out, match{r: r, rule: vuln.RulePURLMap, key: "purl:" + key, versions: vs, confidence: 0.7})
						}
					}
				}
			}
		}
	}
	if c.CPE != "" {
		if cp, err := vuln.ParseCPE(c.CPE); err == nil {
			v := c.Version
			if cp.Version != "*" && cp.Version != "-" {
				v = cp.Version
			}
			key := cp.Key()
			for k := range ix.cpes[key] {
				r := &ix.cpes[key][k]
				if r.part != "*" && cp.Part != "*" && r.part != cp.Part {
					continue
				}
				if vs, ok := r.affects(v); ok {
					out = append(out, match{r: r, rule: vuln.RuleCPE, key: "cpe:" + key, versions: vs, confidence: 0.9})
				}
			}
		}
	}
	return out
}

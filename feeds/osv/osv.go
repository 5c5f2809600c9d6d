package osv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/vigil-iot/vigil/feeds"
	"github.com/vigil-iot/vigil/vuln"
)

// Record is the part of an OSV record Vigil reads.
type Record struct {
	ID        string    `json:"id"`
	Summary   string    `json:"summary"`
	Details   string    `json:"details"`
	Aliases   []string  `json:"aliases"`
	Upstream  []string  `json:"upstream"`
	Published time.Time `json:"published"`
	Modified  time.Time `json:"modified"`
	Withdrawn string    `json:"withdrawn"`
	Severity  []struct {
		Type  string `json:"type"`
		Score string `json:"score"`
	} `json:"severity"`
	Affected []struct {
		Package struct {
			Ecosystem string `json:"ecosystem"`
			Name      string `json:"name"`
			PURL      string `json:"purl"`
		} `json:"package"`
		Ranges []struct {
			Type   string              `json:"type"`
			Events []map[string]string `json:"events"`
		} `json:"ranges"`
		Versions []string `json:"versions"`
	} `json:"affected"`
	References []struct {
		URL string `json:"url"`
	} `json:"references"`
}

// purlTypes maps OSV ecosystems (before any ":") to purl type/namespace.
var purlTypes = map[string]string{
	"Debian": "deb/debian", "Ubuntu": "deb/ubuntu", "Alpine": "apk/alpine", "Wolfi": "apk/wolfi", "Chainguard": "apk/chainguard",
	"OpenWrt": "opkg/openwrt", "npm": "npm", "PyPI": "pypi", "Go": "golang", "crates.io": "cargo", "Maven": "maven",
	"NuGet": "nuget", "RubyGems": "gem", "Packagist": "composer", "Hex": "hex", "Pub": "pub",
}

// Parse reads OSV JSON.
func Parse(r io.Reader) ([]vuln.Advisory, feeds.Result, error) {
	var res feeds.Result
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, res, fmt.Errorf("cannot read OSV JSON: %w", err)
	}
	raw = bytes.TrimSpace(raw)
	var recs []json.RawMessage
	switch {
	case len(raw) > 0 && raw[0] == '[':
		if err := json.Unmarshal(raw, &recs); err != nil {
			return nil, res, fmt.Errorf("cannot decode OSV JSON: %w", err)
		}
	case len(raw) > 0 && raw[0] == '{':
		var q struct {
			Vulns []json.RawMessage `json:"vulns"`
		}
		if err := json.Unmarshal(raw, &q); err != nil {
			return nil, res, fmt.Errorf("cannot decode OSV JSON: %w", err)
		}
		recs = q.Vulns
		if recs == nil {
			recs = []json.RawMessage{raw}
		}
	default:
		return nil, res, fmt.Errorf("cannot decode OSV JSON: not an object or array")
	}
	var out []vuln.Advisory
	for i, rr := range recs {
		var rec Record
		if err := json.Unmarshal(rr, &rec); err != nil {
			res.Reject("record %d: %v", i, err)
			continue
		}
		if rec.ID == "" {
			res.Reject("record %d: no id", i)
			continue
		}
		if rec.Withdrawn != "" {
			res.Skipped++
			continue
		}
		a, err := Convert(&rec)
		if err != nil {
			res.Reject("record %d%s: %v", i, feeds.Named(rec.ID), err)
			continue
		}
		out = append(out, a)
		res.Imported++
	}
	return out, res, nil
}

// Convert turns one OSV record into an advisory.
func Convert(rec *Record) (vuln.Advisory, error) {
	a := vuln.Advisory{ID: rec.ID, Source: vuln.SourceOSV, Summary: rec.Summary, Published: rec.Published, Modified: rec.Modified}
	if a.Summary == "" {
		a.Summary = rec.Details
	}
	a.Aliases = append(append([]string(nil), rec.Aliases...), rec.Upstream...)
	if strings.HasPrefix(rec.ID, "CVE-") {
		a.CVE = rec.ID
	}
	for _, al := range a.Aliases {
		if a.CVE == "" && strings.HasPrefix(al, "CVE-") {
			a.CVE = al
		}
	}
	for _, s := range rec.Severity {
		if strings.HasPrefix(s.Type, "CVSS_V3") {
			if sc, err := vuln.CVSS3Score(s.Score); err == nil {
				a.CVSS, a.CVSSVector = sc, s.Score
			}
		}
	}
	for _, r := range rec.References {
		a.References = append(a.References, r.URL)
	}
	for j, af := range rec.Affected {
		eco := af.Package.Ecosystem
		base, _, _ := strings.Cut(eco, ":")
		p := af.Package.PURL
		if p == "" {
			t, ok := purlTypes[base]
			if !ok || af.Package.Name == "" {
				return a, fmt.Errorf("affected %d: a package with no purl, no name or an ecosystem of no known purl type", j)
			}
			p = "pkg:" + t + "/" + purlPath(base, af.Package.Name)
		}
		pu, err := vuln.ParsePURL(p)
		if err != nil {
			return a, fmt.Errorf("affected %d: bad purl", j)
		}
		pu.Version, pu.Qualifiers = "", nil
		out := vuln.Affected{PURL: pu.String(), Ecosystem: vuln.EcosystemOf(pu.Type), Versions: af.Versions}
		if out.Ecosystem == vuln.Generic {
			out.Ecosystem = vuln.EcosystemOf(base)
		}
		for _, rg := range af.Ranges {
			if rg.Type == "GIT" {
				continue
			}
			var cur *vuln.Range
			for _, ev := range rg.Events {
				switch {
				case ev["introduced"] != "":
					out.Ranges = append(out.Ranges, vuln.Range{Start: ev["introduced"]})
					cur = &out.Ranges[len(out.Ranges)-1]
				case ev["fixed"] != "" && cur != nil:
					cur.End = ev["fixed"]
					out.Fixed = ev["fixed"]
					cur = nil
				case ev["last_affected"] != "" && cur != nil:
					cur.End, cur.EndIncl = ev["last_affected"], true
					cur = nil
				case ev["limit"] != "" && cur != nil:
					cur.End = ev["limit"]
					cur = nil
				}
			}
		}
		if len(out.Ranges) == 0 && len(out.Versions) == 0 {
			continue // only GIT ranges: nothing Vigil can compare
		}
		a.Affected = append(a.Affected, out)
	}
	return a, nil
}

// purlPath turns an OSV package name into the namespace and name of a purl,
// percent-encoded: the path of a Go module or the scope of an npm package
// is its namespace ("@angular/core" → "%40angular/core"), as is a Maven
// group ("org.apache:log4j" → "org.apache/log4j").
func purlPath(ecosystem, name string) string {
	if ecosystem == "Maven" {
		name = strings.Replace(name, ":", "/", 1)
	}
	segs := strings.Split(name, "/")
	for i, s := range segs {
		segs[i] = strings.ReplaceAll(url.PathEscape(s), "@", "%40")
	}
	return strings.Join(segs, "/")
}

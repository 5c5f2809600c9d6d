package csaf

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/vigil-iot/vigil/feeds"
	"github.com/vigil-iot/vigil/vuln"
)

type product struct {
	ProductID string `json:"product_id"`
	Name      string `json:"name"`
	Helper    *struct {
		CPE  string `json:"cpe"`
		PURL string `json:"purl"`
	} `json:"product_identification_helper"`
}

type branch struct {
	Category string   `json:"category"`
	Name     string   `json:"name"`
	Branches []branch `json:"branches"`
	Product  *product `json:"product"`
}

// Document is the part of a CSAF 2.0 document Vigil reads.
type Document struct {
	Document struct {
		Category    string `json:"category"`
		CSAFVersion string `json:"csaf_version"`
		Title       string `json:"title"`
		Tracking    struct {
			ID                 string    `json:"id"`
			InitialReleaseDate time.Time `json:"initial_release_date"`
			CurrentReleaseDate time.Time `json:"current_release_date"`
		} `json:"tracking"`
	} `json:"document"`
	ProductTree struct {
		Branches         []branch  `json:"branches"`
		FullProductNames []product `json:"full_product_names"`
	} `json:"product_tree"`
	// Vulnerabilities are decoded one by one (Vulnerability), so that one
	// of the wrong shape is rejected alone.
	Vulnerabilities []json.RawMessage `json:"vulnerabilities"`
}

// Vulnerability is one vulnerability of a CSAF document.
type Vulnerability struct {
	CVE           string `json:"cve"`
	Title         string `json:"title"`
	ProductStatus struct {
		KnownAffected    []string `json:"known_affected"`
		FirstAffected    []string `json:"first_affected"`
		LastAffected     []string `json:"last_affected"`
		Fixed            []string `json:"fixed"`
		FirstFixed       []string `json:"first_fixed"`
		KnownNotAffected []string `json:"known_not_affected"`
	} `json:"product_status"`
	Scores []struct {
		CVSSv3 *struct {
			BaseScore    float64 `json:"baseScore"`
			VectorString string  `json:"vectorString"`
		} `json:"cvss_v3"`
		Products []string `json:"products"`
	} `json:"scores"`
	Notes []struct {
		Category string `json:"category"`
		Text     string `json:"text"`
	} `json:"notes"`
	IDs []struct {
		SystemName string `json:"system_name"`
		Text       string `json:"text"`
	} `json:"ids"`
}

// prod is one product of the tree with its identity.
type prod struct {
	key       string // "cpe:<vendor>:<product>" or "purl:<purl without version>"
	ident     string // the CPE or purl (without version)
	version   string // exact version, if any
	rng       []vuln.Range
	ecosystem vuln.Ecosystem
}

// Parse reads one CSAF 2.0 document.
func Parse(r io.Reader) ([]vuln.Advisory, feeds.Result, error) {
	var d Document
	var res feeds.Result
	if err := json.NewDecoder(r).Decode(&d); err != nil {
		return nil, res, fmt.Errorf("cannot decode CSAF document: %w", err)
	}
	if d.Document.CSAFVersion != "2.0" {
		return nil, res, fmt.Errorf("cannot read CSAF document: csaf_version is not 2.0")
	}
	tid := d.Document.Tracking.ID
	prods := map[string]prod{}
	var walk func(b branch, vendor, name string) error
	walk = func(b branch, vendor, name string) error {
		switch b.Category {
		case "vendor":
			vendor = b.Name
		case "product_name", "product_family":
			name = b.Name
		}
		if b.Product != nil {
			p, err := identify(b, vendor, name)
			if err != nil {
				return fmt.Errorf("product%s: %v", feeds.Named(b.Product.ProductID), err)
			}
			prods[b.Product.ProductID] = p
		}
		for _, c := range b.Branches {
			if err := walk(c, vendor, name); err != nil {
				return err
			}
		}
		return nil
	}
	for i, b := range d.ProductTree.Branches {
		if err := walk(b, "", ""); err != nil {
			res.Reject("product_tree branch %d: %v", i, err)
		}
	}
	for i, fp := range d.ProductTree.FullProductNames {
		p, err := identify(branch{Product: &fp}, "", "")
		if err != nil {
			res.Reject("product_tree full_product_names %d: %v", i, err)
			continue
		}
		prods[fp.ProductID] = p
	}
	var out []vuln.Advisory
	for i, raw := range d.Vulnerabilities {
		var v Vulnerability
		if err := json.Unmarshal(raw, &v); err != nil {
			res.Reject("vulnerability %d: cannot decode: %v", i, err)
			continue
		}
		name := v.CVE
		if name == "" && len(v.IDs) > 0 {
			name = v.IDs[0].Text
		}
		if name == "" {
			res.Reject("vulnerability %d has no cve or ids", i)
			continue
		}
		if v.CVE != "" && !strings.HasPrefix(v.CVE, "CVE-") {
			res.Reject("vulnerability %d: bad cve", i)
			continue
		}
		a := vuln.Advisory{ID: tid + "/" + name, CVE: v.CVE, Source: vuln.SourceCSAF, Summary: v.Title,
			Published: d.Document.Tracking.InitialReleaseDate, Modified: d.Document.Tracking.CurrentReleaseDate}
		if a.Summary == "" {
			a.Summary = d.Document.Title
		}
		for _, s := range v.Scores {
			if s.CVSSv3 == nil {
				continue
			}
			score := s.CVSSv3.BaseScore
			if score < 0 || score > 10 { // not a base score: trust the vector, if any
				score, _ = vuln.CVSS3Score(s.CVSSv3.VectorString)
			}
			if score > a.CVSS {
				a.CVSS, a.CVSSVector = score, s.CVSSv3.VectorString
			}
		}
		ps := v.ProductStatus
		affected := append(append(append([]string(nil), ps.KnownAffected...), ps.FirstAffected...), ps.LastAffected...)
		fixed := append(append([]string(nil), ps.Fixed...), ps.FirstFixed...)
		byKey := map[string]*vuln.Affected{}
		var keys []string
		bad := false
		get := func(p prod) *vuln.Affected {
			af, ok := byKey[p.key]
			if !ok {
				af = &vuln.Affected{Ecosystem: p.ecosystem}
				if strings.HasPrefix(p.key, "purl:") {
					af.PURL = p.ident
				} else {
					af.CPE = p.ident
				}
				byKey[p.key] = af
				keys = append(keys, p.key)
			}
			return af
		}
		seen := map[string]bool{}
		for j, id := range affected {
			if seen[id] { // listed twice (known and first affected): its ranges once
				continue
			}
			seen[id] = true
			p, ok := prods[id]
			if !ok {
				res.Reject("vulnerability %d%s: affected product %d names an unknown product id", i, feeds.Named(name), j)
				bad = true
				break
			}
			af := get(p)
			if p.version != "" {
				af.Versions = append(af.Versions, p.version)
			}
			af.Ranges = append(af.Ranges, p.rng...)
			if p.version == "" && len(p.rng) == 0 {
				af.Ranges = append(af.Ranges, vuln.Range{}) // every version
			}
		}
		if bad {
			continue
		}
		for _, id := range fixed {
			p, ok := prods[id]
			if !ok || p.version == "" {
				continue
			}
			if af, ok := byKey[p.key]; ok {
				if af.Fixed == "" || vuln.Compare(af.Ecosystem, p.version, af.Fixed) < 0 {
					af.Fixed = p.version
				}
			}
		}
		for _, id := range ps.KnownNotAffected {
			if p, ok := prods[id]; ok && p.version != "" {
				if af, ok := byKey[p.key]; ok {
					af.NotAffected = append(af.NotAffected, p.version)
				}
			}
		}
		sort.Strings(keys)
		for _, k := range keys {
			a.Affected = append(a.Affected, *byKey[k])
		}
		if len(a.Affected) == 0 {
			res.Skipped++
			continue
		}
		out = append(out, a)
		res.Imported++
	}
	return out, res, nil
}

// identify names a product: by its helper's purl or cpe, else by the
// vendor and product_name branches above it.
func identify(b branch, vendor, name string) (prod, error) {
	p := prod{ecosystem: vuln.Generic}
	if h := b.Product.Helper; h != nil && h.PURL != "" {
		pu, err := vuln.ParsePURL(h.PURL)
		if err != nil {
			return p, fmt.Errorf("bad purl") // not quoted: errors never echo content
		}
		p.version = pu.Version
		pu.Version, pu.Qualifiers = "", nil
		p.ident, p.key, p.ecosystem = pu.String(), "purl:"+pu.String(), vuln.EcosystemOf(pu.Type)
	} else if h != nil && h.CPE != "" {
		c, err := vuln.ParseCPE(h.CPE)
		if err != nil {
			return p, fmt.Errorf("bad CPE")
		}
		if c.Version != "*" && c.Version != "-" {
			p.version = c.Version
		}
		c.Version = "*"
		p.ident, p.key = c.String(), "cpe:"+c.Key()
	} else {
		if vendor == "" || name == "" {
			return p, fmt.Errorf("no cpe or purl, and no vendor and product_name branches above it")
		}
		c := vuln.CPE{Part: "*", Vendor: vuln.NormalizeName(vendor), Product: vuln.NormalizeName(name), Version: "*",
			Update: "*", Edition: "*", Language: "*", SWEdition: "*", TargetSW: "*", TargetHW: "*", Other: "*"}
		p.ident, p.key = c.String(), "cpe:"+c.Key()
	}
	if err := readsBack(p); err != nil {
		return p, err
	}
	switch b.Category {
	case "product_version":
		p.version = b.Name
	case "product_version_range":
		rs, eco, err := ParseVers(b.Name)
		if err != nil {
			return p, err
		}
		p.rng, p.ecosystem = rs, eco
	}
	return p, nil
}

// readsBack checks that a product's purl or CPE, as the index will parse
// it, names the same product: a vendor or product name with a ":" or
// nothing in it, or an escaped character, would not.
func readsBack(p prod) error {
	if strings.HasPrefix(p.key, "purl:") {
		pu, err := vuln.ParsePURL(p.ident)
		if err != nil || pu.String() != p.ident {
			return fmt.Errorf("purl does not read back the same")
		}
		return nil
	}
	c, err := vuln.ParseCPE(p.ident)
	if err != nil || "cpe:"+c.Key() != p.key {
		return fmt.Errorf("CPE does not read back the same")
	}
	return nil
}

// maxConstraints bounds the constraints of one vers range: every advisory
// naming the product copies its ranges.
const maxConstraints = 64

// ParseVers parses a "vers:" range ("vers:generic/>=1.0.0|<1.2.5",
// "vers:deb/>=1.0|<1.1|>=2.0|<2.1", "vers:semver/*") into ranges. It reads
// at most 64 constraints.
func ParseVers(s string) ([]vuln.Range, vuln.Ecosystem, error) {
	rest, ok := strings.CutPrefix(s, "vers:")
	if !ok {
		return nil, "", fmt.Errorf("bad range: not vers:")
	}
	scheme, cons, ok := strings.Cut(rest, "/")
	if !ok {
		return nil, "", fmt.Errorf("bad range: no scheme")
	}
	eco := vuln.EcosystemOf(scheme)
	if strings.TrimSpace(cons) == "*" {
		return []vuln.Range{{}}, eco, nil
	}
	if n := strings.Count(cons, "|") + 1; n > maxConstraints {
		return nil, "", fmt.Errorf("bad range: %d constraints, more than %d", n, maxConstraints)
	}
	var out []vuln.Range
	var cur *vuln.Range
	for k, c := range strings.Split(cons, "|") {
		c = strings.TrimSpace(c)
		var op string
		for _, o := range []string{">=", "<=", "!=", ">", "<", "="} {
			if strings.HasPrefix(c, o) {
				op = o
				break
			}
		}
		v := strings.TrimSpace(c[len(op):])
		if v == "" {
			return nil, "", fmt.Errorf("bad range: empty version in constraint %d", k+1)
		}
		switch op {
		case ">=", ">":
			out = append(out, vuln.Range{Start: v, StartExcl: op == ">"})
			cur = &out[len(out)-1]
		case "<", "<=":
			if cur == nil {
				out = append(out, vuln.Range{})
				cur = &out[len(out)-1]
			}
			cur.End, cur.EndIncl = v, op == "<="
			cur = nil
		case "", "=":
			out = append(out, vuln.Range{Start: v, End: v, EndIncl: true})
			cur = nil
		default:
			return nil, "", fmt.Errorf("bad range: operator %s is unsupported", op)
		}
	}
	return out, eco, nil
}

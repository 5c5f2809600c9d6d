package vuln

import (
	"fmt"
	"strings"
	"time"
)

// Advisory sources.
const (
	SourceNVD  = "nvd"
	SourceOSV  = "osv"
	SourceCSAF = "csaf"
)

// Advisory is one vulnerability as a feed describes it.
type Advisory struct {
	// ID is the advisory's own id: a CVE id for NVD, the OSV id, the CSAF
	// document tracking id + CVE.
	ID string `json:"id"`
	// CVE is the CVE id when the advisory has one (its ID or an alias).
	CVE     string   `json:"cve,omitempty"`
	Aliases []string `json:"aliases,omitempty"`
	Source  string   `json:"source"`
	Summary string   `json:"summary,omitempty"`
	// CVSS is the base score (v3.x preferred, else v4, else v2); 0 unknown.
	CVSS       float64    `json:"cvss,omitempty"`
	CVSSVector string     `json:"cvss_vector,omitempty"`
	Published  time.Time  `json:"published,omitzero"`
	Modified   time.Time  `json:"modified,omitzero"`
	Affected   []Affected `json:"affected"`
	References []string   `json:"references,omitempty"`
}

// Affected says which versions of one product an advisory affects. A
// product is named either by a purl (type, namespace, name) or by a CPE
// (part, vendor, product, and optional target); never by a bare name.
type Affected struct {
	// PURL names the package ("pkg:deb/debian/openssl"); its version, if
	// any, is ignored. The scheme to compare versions comes from its type.
	PURL string `json:"purl,omitempty"`
	// CPE names the product; when its version is not * or -, that version
	// alone is affected (besides Ranges and Versions).
	CPE string `json:"cpe,omitempty"`
	// Ecosystem overrides the version scheme (OSV ecosystems, CSAF vers).
	Ecosystem Ecosystem `json:"ecosystem,omitempty"`
	Ranges    []Range   `json:"ranges,omitempty"`
	// Versions are affected versions listed one by one.
	Versions []string `json:"versions,omitempty"`
	// NotAffected are versions a vendor says are not affected (CSAF).
	NotAffected []string `json:"not_affected,omitempty"`
	// Fixed is the version to update to, when the feed says.
	Fixed string `json:"fixed,omitempty"`
}

// Range is one version interval. An empty Start means from the first
// version; an empty End means without an upper bound.
type Range struct {
	Start     string `json:"start,omitempty"`
	StartExcl bool   `json:"start_excl,omitempty"`
	End       string `json:"end,omitempty"`
	EndIncl   bool   `json:"end_incl,omitempty"`
}

// Contains reports whether version v is in the range.
func (r Range) Contains(e Ecosystem, v string) bool {
	if r.Start != "" && r.Start != "0" {
		c := Compare(e, v, r.Start)
		if c < 0 || c == 0 && r.StartExcl {
			return false
		}
	}
	if r.End != "" {
		c := Compare(e, v, r.End)
		if c > 0 || c == 0 && !r.EndIncl {
			return false
		}
	}
	return true
}

// String writes the range as "≥ 1.0, < 1.2".
func (r Range) String() string {
	s := ""
	if r.Start != "" && r.Start != "0" {
		if r.StartExcl {
			s = "> " + r.Start
		} else {
			s = ">= " + r.Start
		}
	}
	if r.End != "" {
		if s != "" {
			s += ", "
		}
		if r.EndIncl {
			s += "<= " + r.End
		} else {
			s += "< " + r.End
		}
	}
	if s == "" {
		s = "all versions"
	}
	return s
}

// KEV is one entry of CISA's Known Exploited Vulnerabilities catalog.
type KEV struct {
	CVE             string    `json:"cve"`
	VendorProject   string    `json:"vendor_project"`
	Product         string    `json:"product"`
	Name            string    `json:"name,omitempty"`
	DateAdded       time.Time `json:"date_added"`
	DueDate         time.Time `json:"due_date"`
	RequiredAction  string    `json:"required_action,omitempty"`
	KnownRansomware bool      `json:"known_ransomware,omitempty"`
}

// VEX statuses.
const (
	VEXNotAffected        = "not_affected"
	VEXAffected           = "affected"
	VEXFixed              = "fixed"
	VEXUnderInvestigation = "under_investigation"
)

// VEXStatement says whether products are affected by a vulnerability.
// Products are purls (with or without version: without, every version),
// CPEs (vendor+product, and version unless * ), or device firmware as
// "vigil:firmware/<vendor>/<model>@<firmware>" (no @: every firmware).
type VEXStatement struct {
	Vuln          string   `json:"vuln"`
	Products      []string `json:"products"`
	Status        string   `json:"status"`
	Justification string   `json:"justification,omitempty"`
	Source        string   `json:"source,omitempty"` // the document it came from
}

// VEXProduct is a parsed VEX product identifier.
type VEXProduct struct {
	PURL *PURL
	CPE  *CPE
	// Firmware: vendor and model (normalized) and firmware ("" = any).
	Vendor, Model, Firmware string
}

// ParseVEXProduct parses a purl, a CPE, or "vigil:firmware/<vendor>/<model>[@<firmware>]".
func ParseVEXProduct(s string) (VEXProduct, error) {
	var p VEXProduct
	switch {
	case strings.HasPrefix(s, "pkg:"):
		pu, err := ParsePURL(s)
		if err != nil {
			return p, err
		}
		p.PURL = &pu
	case strings.HasPrefix(s, "cpe:"):
		c, err := ParseCPE(s)
		if err != nil {
			return p, err
		}
		p.CPE = &c
	case strings.HasPrefix(s, "vigil:firmware/"):
		rest := strings.TrimPrefix(s, "vigil:firmware/")
		if i := strings.LastIndexByte(rest, '@'); i >= 0 {
			rest, p.Firmware = rest[:i], rest[i+1:]
		}
		v, m, ok := strings.Cut(rest, "/")
		if !ok || v == "" || m == "" {
			return p, fmt.Errorf("bad product %q: want vigil:firmware/<vendor>/<model>[@<firmware>]", s)
		}
		p.Vendor, p.Model = NormalizeName(v), NormalizeName(m)
	default:
		return p, fmt.Errorf("bad product %q: not a purl, a CPE or vigil:firmware/...", s)
	}
	return p, nil
}

package nvd

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vigil-iot/vigil/feeds"
	"github.com/vigil-iot/vigil/vuln"
)

type cvssMetric struct {
	Type     string `json:"type"`
	CVSSData struct {
		BaseScore    float64 `json:"baseScore"`
		VectorString string  `json:"vectorString"`
	} `json:"cvssData"`
}

type cpeMatch struct {
	Vulnerable            bool   `json:"vulnerable"`
	Criteria              string `json:"criteria"`
	VersionStartIncluding string `json:"versionStartIncluding"`
	VersionStartExcluding string `json:"versionStartExcluding"`
	VersionEndIncluding   string `json:"versionEndIncluding"`
	VersionEndExcluding   string `json:"versionEndExcluding"`
}

// CVE is the part of an NVD CVE record Vigil reads.
type CVE struct {
	ID           string `json:"id"`
	Published    string `json:"published"`
	LastModified string `json:"lastModified"`
	VulnStatus   string `json:"vulnStatus"`
	Descriptions []struct {
		Lang  string `json:"lang"`
		Value string `json:"value"`
	} `json:"descriptions"`
	Metrics struct {
		V40 []cvssMetric `json:"cvssMetricV40"`
		V31 []cvssMetric `json:"cvssMetricV31"`
		V30 []cvssMetric `json:"cvssMetricV30"`
		V2  []cvssMetric `json:"cvssMetricV2"`
	} `json:"metrics"`
	Configurations []struct {
		Operator string `json:"operator"`
		Negate   bool   `json:"negate"`
		Nodes    []struct {
			Operator string     `json:"operator"`
			Negate   bool       `json:"negate"`
			CPEMatch []cpeMatch `json:"cpeMatch"`
		} `json:"nodes"`
	} `json:"configurations"`
	References []struct {
		URL string `json:"url"`
	} `json:"references"`
}

func parseTime(s string) time.Time {
	for _, layout := range []string{"2006-01-02T15:04:05.000", "2006-01-02T15:04:05", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

// Parse streams an NVD CVE API 2.0 document and returns its advisories.
// A CVE that cannot be read is rejected; the rest go through.
func Parse(r io.Reader) ([]vuln.Advisory, feeds.Result, error) {
	var out []vuln.Advisory
	var res feeds.Result
	dec := json.NewDecoder(r)
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, res, fmt.Errorf("cannot read NVD JSON: not an object")
	}
	found := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return out, res, fmt.Errorf("cannot read NVD JSON: %w", err)
		}
		key, _ := tok.(string)
		if key == "CVE_Items" {
			return nil, res, fmt.Errorf("cannot read NVD JSON: this is the retired 1.1 feed format; use API 2.0 JSON")
		}
		if key != "vulnerabilities" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return out, res, fmt.Errorf("cannot read NVD JSON: a top-level value: %w", err)
			}
			continue
		}
		found = true
		if t, err := dec.Token(); err != nil || t != json.Delim('[') {
			return out, res, fmt.Errorf("cannot read NVD JSON: vulnerabilities is not an array")
		}
		for i := 0; dec.More(); i++ {
			var item struct {
				CVE CVE `json:"cve"`
			}
			if err := dec.Decode(&item); err != nil {
				// Only a value of the wrong type was read whole: past any
				// other error (bad syntax, a truncated file) the decoder
				// cannot go on, and would fail the same way forever.
				var te *json.UnmarshalTypeError
				if !errors.As(err, &te) {
					return out, res, fmt.Errorf("cannot read NVD JSON: vulnerability %d: %w", i, err)
				}
				res.Reject("vulnerability %d: %v", i, err)
				continue
			}
			if item.CVE.VulnStatus == "Rejected" {
				res.Skipped++
				continue
			}
			a, err := Convert(&item.CVE)
			if err != nil {
				res.Reject("vulnerability %d%s: %v", i, feeds.Named(item.CVE.ID), err)
				continue
			}
			out = append(out, a)
			res.Imported++
		}
		if _, err := dec.Token(); err != nil {
			return out, res, fmt.Errorf("cannot read NVD JSON: %w", err)
		}
	}
	if !found {
		return nil, res, fmt.Errorf("cannot read NVD JSON: no vulnerabilities array")
	}
	return out, res, nil
}

// Convert turns one CVE record into an advisory.
func Convert(c *CVE) (vuln.Advisory, error) {
	if !strings.HasPrefix(c.ID, "CVE-") {
		return vuln.Advisory{}, fmt.Errorf("bad CVE id")
	}
	a := vuln.Advisory{ID: c.ID, CVE: c.ID, Source: vuln.SourceNVD, Published: parseTime(c.Published), Modified: parseTime(c.LastModified)}
	for _, d := range c.Descriptions {
		if d.Lang == "en" {
			a.Summary = d.Value
			break
		}
	}
	for _, ms := range [][]cvssMetric{c.Metrics.V31, c.Metrics.V30, c.Metrics.V40, c.Metrics.V2} {
		if len(ms) == 0 {
			continue
		}
		m := ms[0]
		for _, x := range ms {
			if x.Type == "Primary" {
				m = x
				break
			}
		}
		score := m.CVSSData.BaseScore
		if score < 0 || score > 10 { // not a base score: trust the vector, if it is v3
			var err error
			if score, err = vuln.CVSS3Score(m.CVSSData.VectorString); err != nil {
				continue
			}
		}
		a.CVSS, a.CVSSVector = score, m.CVSSData.VectorString
		break
	}
	for _, r := range c.References {
		a.References = append(a.References, r.URL)
	}
	for _, cfg := range c.Configurations {
		if cfg.Negate {
			continue
		}
		for _, n := range cfg.Nodes {
			if n.Negate {
				continue
			}
			for _, m := range n.CPEMatch {
				if !m.Vulnerable {
					continue
				}
				cpe, err := vuln.ParseCPE(m.Criteria)
				if err != nil {
					return a, fmt.Errorf("a cpeMatch criteria is no CPE") // not quoted: errors never echo content
				}
				af := vuln.Affected{CPE: m.Criteria}
				rg := vuln.Range{}
				switch {
				case m.VersionStartIncluding != "":
					rg.Start = m.VersionStartIncluding
				case m.VersionStartExcluding != "":
					rg.Start, rg.StartExcl = m.VersionStartExcluding, true
				}
				switch {
				case m.VersionEndExcluding != "":
					rg.End = m.VersionEndExcluding
					af.Fixed = m.VersionEndExcluding
				case m.VersionEndIncluding != "":
					rg.End, rg.EndIncl = m.VersionEndIncluding, true
				}
				if rg != (vuln.Range{}) {
					af.Ranges = []vuln.Range{rg}
				} else if cpe.Version == "*" {
					af.Ranges = []vuln.Range{{}} // every version
				}
				a.Affected = append(a.Affected, af)
			}
		}
	}
	return a, nil
}

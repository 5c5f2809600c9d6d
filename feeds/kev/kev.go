package kev

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vigil-iot/vigil/feeds"
	"github.com/vigil-iot/vigil/vuln"
)

// Catalog is the KEV document header. Its entries are decoded one by one,
// so that one entry that does not decode is rejected alone.
type Catalog struct {
	Title           string            `json:"title"`
	CatalogVersion  string            `json:"catalogVersion"`
	DateReleased    string            `json:"dateReleased"`
	Vulnerabilities []json.RawMessage `json:"vulnerabilities"`
}

// Entry is one entry of the catalog.
type Entry struct {
	CVEID                      string `json:"cveID"`
	VendorProject              string `json:"vendorProject"`
	Product                    string `json:"product"`
	VulnerabilityName          string `json:"vulnerabilityName"`
	DateAdded                  string `json:"dateAdded"`
	DueDate                    string `json:"dueDate"`
	RequiredAction             string `json:"requiredAction"`
	KnownRansomwareCampaignUse string `json:"knownRansomwareCampaignUse"`
}

// Parse reads the catalog. An entry that does not decode, or has a bad CVE
// id or date, is rejected; the rest go through.
func Parse(r io.Reader) ([]vuln.KEV, feeds.Result, error) {
	var c Catalog
	var res feeds.Result
	if err := json.NewDecoder(r).Decode(&c); err != nil {
		return nil, res, fmt.Errorf("cannot decode KEV catalog: %w", err)
	}
	if c.Vulnerabilities == nil {
		return nil, res, fmt.Errorf("cannot read KEV catalog: no vulnerabilities array")
	}
	out := make([]vuln.KEV, 0, len(c.Vulnerabilities))
	for i, raw := range c.Vulnerabilities {
		var v Entry
		if err := json.Unmarshal(raw, &v); err != nil {
			res.Reject("entry %d: cannot decode: %v", i, err)
			continue
		}
		if !strings.HasPrefix(v.CVEID, "CVE-") {
			res.Reject("entry %d: bad cveID", i)
			continue
		}
		added, err1 := time.Parse(time.DateOnly, v.DateAdded)
		due, err2 := time.Parse(time.DateOnly, v.DueDate)
		if err1 != nil || err2 != nil {
			res.Reject("entry %d%s: bad dateAdded or dueDate (want YYYY-MM-DD)", i, feeds.Named(v.CVEID))
			continue
		}
		out = append(out, vuln.KEV{CVE: v.CVEID, VendorProject: v.VendorProject, Product: v.Product, Name: v.VulnerabilityName,
			DateAdded: added, DueDate: due, RequiredAction: v.RequiredAction, KnownRansomware: v.KnownRansomwareCampaignUse == "Known"})
		res.Imported++
	}
	return out, res, nil
}

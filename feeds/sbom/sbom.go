package sbom

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/feeds"
)

// SBOM is what a bill of materials says about one firmware.
type SBOM struct {
	Format string `json:"format"` // cyclonedx-1.6, spdx-2.3, ...
	// Vendor, Model and Firmware come from the document's subject when it
	// names one (CycloneDX metadata.component); callers usually set them.
	Vendor     string            `json:"vendor,omitempty"`
	Model      string            `json:"model,omitempty"`
	Firmware   string            `json:"firmware,omitempty"`
	Components []vigil.Component `json:"components"`
}

type cdxComp struct {
	Type     string `json:"type"`
	Name     string `json:"name"`
	Group    string `json:"group"`
	Version  string `json:"version"`
	PURL     string `json:"purl"`
	CPE      string `json:"cpe"`
	Supplier *struct {
		Name string `json:"name"`
	} `json:"supplier"`
	Manufacturer *struct {
		Name string `json:"name"`
	} `json:"manufacturer"`
	// Components are decoded one by one, so that one of the wrong shape
	// is rejected alone.
	Components []json.RawMessage `json:"components"`
}

type cdx struct {
	BOMFormat   string `json:"bomFormat"`
	SpecVersion string `json:"specVersion"`
	Metadata    struct {
		Component *cdxComp `json:"component"`
	} `json:"metadata"`
	Components []json.RawMessage `json:"components"`
}

type spdx struct {
	SPDXVersion string `json:"spdxVersion"`
	Name        string `json:"name"`
	// Packages are decoded one by one (spdxPackage).
	Packages          []json.RawMessage `json:"packages"`
	DocumentDescribes []string          `json:"documentDescribes"`
}

type spdxPackage struct {
	SPDXID       string `json:"SPDXID"`
	Name         string `json:"name"`
	VersionInfo  string `json:"versionInfo"`
	Supplier     string `json:"supplier"`
	Purpose      string `json:"primaryPackagePurpose"`
	ExternalRefs []struct {
		Category string `json:"referenceCategory"`
		Type     string `json:"referenceType"`
		Locator  string `json:"referenceLocator"`
	} `json:"externalRefs"`
}

// maxDepth bounds how deep CycloneDX components nest: the path of each
// one, kept for its errors, grows with its depth.
const maxDepth = 32

// Parse reads a CycloneDX or SPDX JSON document. A component without a
// name is rejected, as are (once) CycloneDX components nested more than 32
// deep; the rest go through.
func Parse(r io.Reader) (SBOM, feeds.Result, error) {
	var res feeds.Result
	var out SBOM
	raw, err := io.ReadAll(r)
	if err != nil {
		return out, res, fmt.Errorf("cannot read SBOM: %w", err)
	}
	var probe struct {
		BOMFormat   string `json:"bomFormat"`
		SpecVersion string `json:"specVersion"`
		SPDXVersion string `json:"spdxVersion"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return out, res, fmt.Errorf("cannot decode SBOM: %w", err)
	}
	switch {
	case probe.BOMFormat == "CycloneDX":
		if probe.SpecVersion != "1.5" && probe.SpecVersion != "1.6" && probe.SpecVersion != "1.4" {
			return out, res, fmt.Errorf("cannot read SBOM: CycloneDX specVersion is not 1.4, 1.5 or 1.6")
		}
		var d cdx
		if err := json.Unmarshal(raw, &d); err != nil {
			return out, res, fmt.Errorf("cannot decode CycloneDX: %w", err)
		}
		out.Format = "cyclonedx-" + d.SpecVersion
		if m := d.Metadata.Component; m != nil {
			out.Model, out.Firmware = m.Name, m.Version
			if m.Manufacturer != nil {
				out.Vendor = m.Manufacturer.Name
			} else if m.Supplier != nil {
				out.Vendor = m.Supplier.Name
			}
		}
		var walk func(cs []json.RawMessage, path string, depth int)
		walk = func(cs []json.RawMessage, path string, depth int) {
			if depth >= maxDepth && len(cs) > 0 {
				res.Reject("%s: components nested deeper than %d are not read", path, maxDepth)
				return
			}
			for i, raw := range cs {
				where := fmt.Sprintf("%s[%d]", path, i)
				var c cdxComp
				if err := json.Unmarshal(raw, &c); err != nil {
					res.Reject("%s: cannot decode: %v", where, err)
					continue
				}
				if c.Name == "" {
					res.Reject("%s: component without a name", where)
				} else {
					name := c.Name
					if c.Group != "" && c.PURL == "" {
						name = c.Group + "/" + c.Name
					}
					typ := "library"
					switch c.Type {
					case "firmware", "operating-system", "application", "device":
						typ = c.Type
					}
					out.Components = append(out.Components, vigil.Component{Name: name, Version: c.Version, Type: typ, Source: "sbom", PURL: c.PURL, CPE: c.CPE})
					res.Imported++
				}
				walk(c.Components, where+".components", depth+1)
			}
		}
		walk(d.Components, "components", 0)
	case strings.HasPrefix(probe.SPDXVersion, "SPDX-2."):
		var d spdx
		if err := json.Unmarshal(raw, &d); err != nil {
			return out, res, fmt.Errorf("cannot decode SPDX: %w", err)
		}
		out.Format = strings.ToLower(d.SPDXVersion)
		described := map[string]bool{}
		for _, id := range d.DocumentDescribes {
			described[id] = true
		}
		for i, raw := range d.Packages {
			var p spdxPackage
			if err := json.Unmarshal(raw, &p); err != nil {
				res.Reject("packages[%d]: cannot decode: %v", i, err)
				continue
			}
			if p.Name == "" {
				res.Reject("packages[%d]: package without a name", i)
				continue
			}
			c := vigil.Component{Name: p.Name, Version: p.VersionInfo, Type: "library", Source: "sbom"}
			if v := strings.ToLower(p.Purpose); v == "firmware" || v == "operating-system" || v == "application" {
				c.Type = v
			}
			for _, ref := range p.ExternalRefs {
				switch ref.Type {
				case "purl":
					c.PURL = ref.Locator
				case "cpe23Type", "cpe22Type":
					if c.CPE == "" || ref.Type == "cpe23Type" {
						c.CPE = ref.Locator
					}
				}
			}
			if described[p.SPDXID] && (c.Type == "firmware" || c.PURL == "" && c.CPE == "") {
				out.Model, out.Firmware = p.Name, p.VersionInfo
				out.Vendor = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(p.Supplier, "Organization:"), "Person:"))
				continue // the subject, not a component of itself
			}
			out.Components = append(out.Components, c)
			res.Imported++
		}
	default:
		return out, res, fmt.Errorf("cannot read SBOM: neither CycloneDX (bomFormat) nor SPDX 2.x (spdxVersion)")
	}
	return out, res, nil
}

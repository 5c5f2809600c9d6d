package vex

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/vigil-iot/vigil/feeds"
	"github.com/vigil-iot/vigil/vuln"
)

// openVEX is an OpenVEX document; its statements are decoded one by one,
// so that one of the wrong shape is rejected alone.
type openVEX struct {
	Context    string            `json:"@context"`
	ID         string            `json:"@id"`
	Statements []json.RawMessage `json:"statements"`
}

type openVEXStatement struct {
	Vulnerability struct {
		Name string `json:"name"`
		ID   string `json:"@id"`
	} `json:"vulnerability"`
	Products []struct {
		ID            string `json:"@id"`
		Identifiers   map[string]string
		Subcomponents []struct {
			ID string `json:"@id"`
		} `json:"subcomponents"`
	} `json:"products"`
	Status        string `json:"status"`
	Justification string `json:"justification"`
}

type cdxComponent struct {
	BOMRef     string         `json:"bom-ref"`
	PURL       string         `json:"purl"`
	CPE        string         `json:"cpe"`
	Components []cdxComponent `json:"components"`
}

type cycloneDX struct {
	BOMFormat    string `json:"bomFormat"`
	SerialNumber string `json:"serialNumber"`
	Metadata     struct {
		Component *cdxComponent `json:"component"`
	} `json:"metadata"`
	Components []cdxComponent `json:"components"`
	// Vulnerabilities are decoded one by one (cdxVuln).
	Vulnerabilities []json.RawMessage `json:"vulnerabilities"`
}

type cdxVuln struct {
	ID       string `json:"id"`
	Analysis struct {
		State         string `json:"state"`
		Justification string `json:"justification"`
	} `json:"analysis"`
	Affects []struct {
		Ref string `json:"ref"`
	} `json:"affects"`
}

// cdxStates maps CycloneDX analysis states to VEX statuses.
var cdxStates = map[string]string{
	"not_affected": vuln.VEXNotAffected, "false_positive": vuln.VEXNotAffected, "resolved": vuln.VEXFixed,
	"resolved_with_pedigree": vuln.VEXFixed, "exploitable": vuln.VEXAffected, "in_triage": vuln.VEXUnderInvestigation,
}

// Parse reads an OpenVEX or a CycloneDX VEX document.
func Parse(r io.Reader) ([]vuln.VEXStatement, feeds.Result, error) {
	var res feeds.Result
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, res, fmt.Errorf("cannot read VEX: %w", err)
	}
	var probe struct {
		Context   string `json:"@context"`
		BOMFormat string `json:"bomFormat"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, res, fmt.Errorf("cannot decode VEX: %w", err)
	}
	var out []vuln.VEXStatement
	switch {
	case bytes.Contains([]byte(probe.Context), []byte("openvex")):
		var d openVEX
		if err := json.Unmarshal(raw, &d); err != nil {
			return nil, res, fmt.Errorf("cannot decode OpenVEX: %w", err)
		}
		for i, raw := range d.Statements {
			var s openVEXStatement
			if err := json.Unmarshal(raw, &s); err != nil {
				res.Reject("statement %d: cannot decode: %v", i, err)
				continue
			}
			name := s.Vulnerability.Name
			if name == "" {
				name = s.Vulnerability.ID
			}
			st := vuln.VEXStatement{Vuln: name, Status: s.Status, Justification: s.Justification, Source: d.ID}
			for _, p := range s.Products {
				if len(p.Subcomponents) > 0 {
					for _, sc := range p.Subcomponents {
						st.Products = append(st.Products, sc.ID)
					}
					continue
				}
				if p.ID != "" {
					st.Products = append(st.Products, p.ID)
				}
				for _, k := range []string{"purl", "cpe23", "cpe22"} {
					if v := p.Identifiers[k]; v != "" {
						st.Products = append(st.Products, v)
					}
				}
			}
			if err := check(&st); err != nil {
				res.Reject("statement %d%s: %v", i, feeds.Named(name), err)
				continue
			}
			out = append(out, st)
			res.Imported++
		}
	case probe.BOMFormat == "CycloneDX":
		var d cycloneDX
		if err := json.Unmarshal(raw, &d); err != nil {
			return nil, res, fmt.Errorf("cannot decode CycloneDX VEX: %w", err)
		}
		refs := map[string]string{}
		var walk func(cs []cdxComponent)
		walk = func(cs []cdxComponent) {
			for _, c := range cs {
				id := c.PURL
				if id == "" {
					id = c.CPE
				}
				if c.BOMRef != "" && id != "" {
					refs[c.BOMRef] = id
				}
				walk(c.Components)
			}
		}
		if d.Metadata.Component != nil {
			walk([]cdxComponent{*d.Metadata.Component})
		}
		walk(d.Components)
		for i, raw := range d.Vulnerabilities {
			var v cdxVuln
			if err := json.Unmarshal(raw, &v); err != nil {
				res.Reject("vulnerability %d: cannot decode: %v", i, err)
				continue
			}
			st := vuln.VEXStatement{Vuln: v.ID, Status: cdxStates[v.Analysis.State], Justification: v.Analysis.Justification, Source: d.SerialNumber}
			for _, a := range v.Affects {
				if id, ok := refs[a.Ref]; ok {
					st.Products = append(st.Products, id)
				} else {
					st.Products = append(st.Products, a.Ref) // a purl or cpe used as the ref itself
				}
			}
			if err := check(&st); err != nil {
				res.Reject("vulnerability %d%s: %v", i, feeds.Named(v.ID), err)
				continue
			}
			out = append(out, st)
			res.Imported++
		}
	default:
		return nil, res, fmt.Errorf("cannot read VEX: neither OpenVEX (@context) nor CycloneDX (bomFormat)")
	}
	return out, res, nil
}

func check(st *vuln.VEXStatement) error {
	if st.Vuln == "" {
		return fmt.Errorf("no vulnerability")
	}
	switch st.Status {
	case vuln.VEXNotAffected, vuln.VEXAffected, vuln.VEXFixed, vuln.VEXUnderInvestigation:
	default:
		return fmt.Errorf("unknown status (want not_affected, affected, fixed or under_investigation)")
	}
	if len(st.Products) == 0 {
		return fmt.Errorf("no products")
	}
	for k, p := range st.Products {
		if _, err := vuln.ParseVEXProduct(p); err != nil {
			return fmt.Errorf("product %d is no purl or CPE", k) // not quoted: errors never echo content
		}
	}
	return nil
}

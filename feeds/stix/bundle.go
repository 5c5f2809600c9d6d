package stix

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/vigil-iot/vigil/feeds"
)

// Bundle is a STIX bundle with its objects left raw.
type Bundle struct {
	Type        string            `json:"type"`
	ID          string            `json:"id"`
	SpecVersion string            `json:"spec_version,omitempty"` // 2.0 bundles carry it
	Objects     []json.RawMessage `json:"objects"`
}

// indicator is the part of a STIX indicator object Vigil reads.
type indicator struct {
	Type           string    `json:"type"`
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	Description    string    `json:"description"`
	Pattern        string    `json:"pattern"`
	PatternType    string    `json:"pattern_type"`
	ValidFrom      time.Time `json:"valid_from"`
	ValidUntil     time.Time `json:"valid_until"`
	Confidence     *int      `json:"confidence"`
	Labels         []string  `json:"labels"`
	IndicatorTypes []string  `json:"indicator_types"`
	Revoked        bool      `json:"revoked"`
}

// Parse reads a STIX 2.0 or 2.1 bundle and returns its indicators, with the
// feed's defaults applied. Objects that are not indicators are counted as
// skipped; an indicator whose pattern is unsupported is rejected (its id and
// the reason are in the result) and the rest go through. The error is for a
// file that is not a bundle at all.
func Parse(r io.Reader, f *feeds.Feed, now time.Time) ([]feeds.Indicator, feeds.Result, error) {
	var b Bundle
	if err := json.NewDecoder(r).Decode(&b); err != nil {
		return nil, feeds.Result{}, fmt.Errorf("cannot decode STIX bundle: %w", err)
	}
	if b.Type != "bundle" {
		return nil, feeds.Result{}, fmt.Errorf("cannot read STIX bundle: type is not bundle")
	}
	ins, res := Objects(b.Objects, f, now)
	return ins, res, nil
}

// Objects converts raw STIX objects (a bundle's, or a TAXII envelope's).
func Objects(objs []json.RawMessage, f *feeds.Feed, now time.Time) ([]feeds.Indicator, feeds.Result) {
	var res feeds.Result
	var out []feeds.Indicator
	for i, raw := range objs {
		var o indicator
		if err := json.Unmarshal(raw, &o); err != nil {
			res.Reject("object %d: cannot decode: %v", i, err)
			continue
		}
		if o.Type != "indicator" || o.Revoked {
			res.Skipped++
			continue
		}
		ins, err := Convert(&o)
		if err != nil {
			res.Reject("object %d%s: %v", i, feeds.Named(o.ID), err)
			continue
		}
		for k := range ins {
			f.Apply(&ins[k], now)
		}
		out = append(out, ins...)
		res.Imported++
	}
	return out, res
}

// Convert turns one indicator object into Indicators, one per alternative
// of its pattern.
func Convert(o *indicator) ([]feeds.Indicator, error) {
	if o.ID == "" {
		return nil, fmt.Errorf("no id")
	}
	if o.Confidence != nil && (*o.Confidence < 0 || *o.Confidence > 100) {
		return nil, fmt.Errorf("confidence %d is not in 0..100", *o.Confidence)
	}
	if o.PatternType != "" && o.PatternType != "stix" {
		return nil, fmt.Errorf("pattern_type is unsupported (want stix)")
	}
	if o.Pattern == "" {
		return nil, fmt.Errorf("no pattern")
	}
	dnf, err := ParsePattern(o.Pattern)
	if err != nil {
		return nil, fmt.Errorf("pattern: %v", err)
	}
	labels := append(append([]string(nil), o.Labels...), o.IndicatorTypes...)
	conf := 0
	if o.Confidence != nil {
		conf = *o.Confidence
		if conf == 0 { // STIX 0 means "no confidence"; keep it distinct from unset
			conf = 1
		}
	}
	var out []feeds.Indicator
	for _, alt := range dnf {
		key := -1
		for i, a := range alt {
			if a.Type != feeds.TypeFileName && a.Type != feeds.TypePort {
				key = i
				break
			}
		}
		if key < 0 {
			return nil, fmt.Errorf("pattern: an alternative has no address, domain, url or hash to match on")
		}
		in := feeds.Indicator{
			ID: o.ID, Type: alt[key].Type, Value: alt[key].Value,
			Name: o.Name, Description: o.Description, Pattern: o.Pattern,
			Labels: labels, Confidence: conf, ValidFrom: o.ValidFrom, ValidUntil: o.ValidUntil,
		}
		for i, a := range alt {
			if i != key {
				in.And = append(in.And, feeds.Cond{Type: a.Type, Value: a.Value})
			}
		}
		out = append(out, in)
	}
	return out, nil
}

package wire

import (
	"encoding/xml"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Metrics are numeric values by name. In JSON they are an object
// {"fan_rpm": 1200}; in XML a list <metric name="fan_rpm" value="1200"/>.
type Metrics map[string]float64

// Fields are text attributes by name. In JSON they are an object
// {"user.name": "root"}; in XML a list <field name="user.name">root</field>.
type Fields map[string]string

type xmlMetric struct {
	XMLName xml.Name `xml:"metric"`
	Name    string   `xml:"name,attr"`
	Value   string   `xml:"value,attr"`
}

type xmlField struct {
	XMLName xml.Name `xml:"field"`
	Name    string   `xml:"name,attr"`
	Value   string   `xml:",chardata"`
}

// MarshalXML writes the metrics as <metric> elements sorted by name.
func (m Metrics) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	for _, k := range sortedKeys(m) {
		if err := e.Encode(xmlMetric{Name: k, Value: formatFloat(m[k])}); err != nil {
			return err
		}
	}
	return e.EncodeToken(start.End())
}

// UnmarshalXML reads <metric name=".." value=".."/> elements; other
// elements are skipped.
func (m *Metrics) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	if *m == nil {
		*m = Metrics{}
	}
	return eachChild(d, "metric", func(se xml.StartElement) error {
		var x xmlMetric
		if err := d.DecodeElement(&x, &se); err != nil {
			return err
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(x.Value), 64)
		if err != nil {
			return fmt.Errorf("metric %q: cannot parse value %q as a number", x.Name, x.Value)
		}
		(*m)[x.Name] = v
		return nil
	})
}

// MarshalXML writes the fields as <field> elements sorted by name.
func (f Fields) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	for _, k := range sortedKeys(f) {
		if err := e.Encode(xmlField{Name: k, Value: f[k]}); err != nil {
			return err
		}
	}
	return e.EncodeToken(start.End())
}

// UnmarshalXML reads <field name="..">value</field> elements; other
// elements are skipped.
func (f *Fields) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	if *f == nil {
		*f = Fields{}
	}
	return eachChild(d, "field", func(se xml.StartElement) error {
		var x xmlField
		if err := d.DecodeElement(&x, &se); err != nil {
			return err
		}
		(*f)[x.Name] = x.Value
		return nil
	})
}

// eachChild calls fn for every child element named name of the element
// being decoded, skips other children, and returns at its end.
func eachChild(d *xml.Decoder, name string, fn func(xml.StartElement) error) error {
	for {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local != name {
				if err := d.Skip(); err != nil {
					return err
				}
				continue
			}
			if err := fn(t); err != nil {
				return err
			}
		case xml.EndElement:
			return nil
		}
	}
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

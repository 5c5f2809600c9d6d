package sigma

import (
	_ "embed"
	"fmt"
	"os"

	"github.com/vigil-iot/vigil"
	"go.yaml.in/yaml/v3"
)

//go:embed mapping.yml
var defaultMapping []byte

// Config is the mapping config: logsources of Vigil's event kinds, Sigma
// taxonomy field names to Vigil field names, and placeholder values for
// the expand modifier.
type Config struct {
	Kinds        map[string][]Logsource `yaml:"kinds"`
	FieldMaps    []FieldMap             `yaml:"fieldmaps"`
	Placeholders map[string][]string    `yaml:"placeholders"`
}

// FieldMap maps field names for rules of one logsource (all rules when
// Logsource is empty).
type FieldMap struct {
	Logsource Logsource           `yaml:"logsource"`
	Fields    map[string][]string `yaml:"fields"`
}

// DefaultConfig returns the embedded default mapping config.
func DefaultConfig() *Config {
	c, err := parseConfig(defaultMapping)
	if err != nil {
		panic(fmt.Sprintf("sigma: embedded mapping.yml: %v", err))
	}
	return c
}

// ParseConfig reads a mapping config. Sections it leaves out (kinds,
// fieldmaps) keep the embedded defaults, and the placeholders it names
// override the embedded ones one by one, so a file holding only
// placeholder values is a complete config.
func ParseConfig(b []byte) (*Config, error) {
	c, err := parseConfig(b)
	if err != nil {
		return nil, err
	}
	d := DefaultConfig()
	if c.Kinds == nil {
		c.Kinds = d.Kinds
	}
	if c.FieldMaps == nil {
		c.FieldMaps = d.FieldMaps
	}
	for name, vals := range d.Placeholders {
		if _, ok := c.Placeholders[name]; !ok {
			c.Placeholders[name] = vals
		}
	}
	return c, nil
}

func parseConfig(b []byte) (*Config, error) {
	var c Config
	if err := yaml.Unmarshal(b, &c); err != nil {
		return nil, vigil.Errorf(vigil.EINVALID, "cannot parse sigma mapping config: %v", err)
	}
	if c.Placeholders == nil {
		c.Placeholders = map[string][]string{}
	}
	return &c, nil
}

// LoadConfig reads a mapping config file.
func LoadConfig(file string) (*Config, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("cannot read sigma mapping config: %w", err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return c, nil
}

// fieldNames returns the names a rule field is looked up under, for a rule
// of logsource ls: its own name, then the mapped ones.
func (c *Config) fieldNames(name string, ls Logsource) []string {
	out := []string{name}
	add := func(ns []string) {
		for _, n := range ns {
			dup := false
			for _, o := range out {
				dup = dup || o == n
			}
			if !dup {
				out = append(out, n)
			}
		}
	}
	for _, fm := range c.FieldMaps {
		if fm.Logsource == (Logsource{}) {
			continue
		}
		if fm.Logsource.covers(ls) {
			if ns, ok := fm.Fields[name]; ok {
				add(ns)
				return out
			}
		}
	}
	for _, fm := range c.FieldMaps {
		if fm.Logsource == (Logsource{}) {
			if ns, ok := fm.Fields[name]; ok {
				add(ns)
				break
			}
		}
	}
	return out
}

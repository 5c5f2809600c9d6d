package sigma

import (
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// Source is a tree of rule files: a rule pack embedded in the binary, or
// os.DirFS of a rule directory. Name prefixes file names in errors.
type Source struct {
	Name string
	FS   fs.FS
}

// LoadSources loads every .yml and .yaml file of every source (recursively)
// into one rule set, so that correlations may refer to rules of another
// source. Files or documents that cannot be compiled are returned as
// errors; the rest of the set loads.
func LoadSources(srcs []Source, cfg *Config) (*RuleSet, []FileError) {
	rs := NewRuleSet(cfg)
	var errs []FileError
	for _, src := range srcs {
		err := fs.WalkDir(src.FS, ".", func(p string, de fs.DirEntry, err error) error {
			name := path.Join(src.Name, p)
			if err != nil {
				errs = append(errs, FileError{File: name, Reason: fmt.Sprintf("cannot read: %v", err)})
				return nil
			}
			ext := strings.ToLower(path.Ext(p))
			if de.IsDir() || (ext != ".yml" && ext != ".yaml") {
				return nil
			}
			b, err := fs.ReadFile(src.FS, p)
			if err != nil {
				errs = append(errs, FileError{File: name, Reason: fmt.Sprintf("cannot read: %v", err)})
				return nil
			}
			errs = append(errs, rs.add(name, b)...)
			return nil
		})
		if err != nil {
			errs = append(errs, FileError{File: src.Name, Reason: err.Error()})
		}
	}
	return rs, append(errs, rs.finish()...)
}

// Enabled reports whether the rule runs (see RuleSet.SetEnabled).
func (r *Rule) Enabled() bool { return !r.disabled.Load() }

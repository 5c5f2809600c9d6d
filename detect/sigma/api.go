package sigma

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
)

// CheckResult is the outcome of compiling rule directories, for
// `vigil rules check`.
type CheckResult struct {
	Files    int `json:"files"`
	Total    int `json:"total"`
	Compiled int `json:"compiled"`
	Rejected int `json:"rejected"`
	// Unvalued counts compiled rules that expand a placeholder declared
	// without values: they compile, but match nothing through it until
	// the deployment gives its values.
	Unvalued int         `json:"unvalued"`
	Errors   []FileError `json:"errors,omitempty"`
}

// Summary is the last line `vigil rules check` prints.
func (c CheckResult) Summary() string {
	return fmt.Sprintf("rules: total=%d compiled=%d rejected=%d", c.Total, c.Compiled, c.Rejected)
}

// Check compiles every rule under dirs with cfg (nil: the default config)
// and reports per-file errors and counts. OK when Rejected is zero.
func Check(dirs []string, cfg *Config) (*RuleSet, CheckResult) {
	rs, errs := LoadDirs(dirs, cfg)
	return rs, rs.Check(errs)
}

// Check turns load errors into a CheckResult.
func (rs *RuleSet) Check(errs []FileError) CheckResult {
	return CheckResult{Files: rs.Files, Total: rs.Total, Compiled: rs.Compiled(), Rejected: rs.Rejected, Unvalued: rs.Unvalued, Errors: errs}
}

// TestRuleFile loads the rules of one file (or directory) and evaluates
// them on the NDJSON events of r whatever their logsource, for
// `vigil rules test`. matched is the number of events that matched at
// least one rule; rule load errors are returned separately.
func TestRuleFile(path string, r io.Reader, cfg *Config) (results []TestResult, matched int, loadErrs []FileError, err error) {
	rs, loadErrs := LoadDirs([]string{path}, cfg)
	if rs.Total == 0 && len(loadErrs) == 0 {
		return nil, 0, nil, fmt.Errorf("cannot test %s: no rule found", path)
	}
	results, matched, err = rs.TestEvents(r)
	return results, matched, loadErrs, err
}

// FormatResult renders a TestResult as one human-readable line.
func FormatResult(r TestResult) string {
	if r.Error != "" {
		return "error: " + r.Error
	}
	if c := r.Correlation; c != nil {
		group := ""
		if c.Group != "" {
			group = " group " + c.Group
		}
		return fmt.Sprintf("line %d: CORRELATION: %s (%s%s: value %g over %d events from %s to %s)", r.Line, r.Title, c.Type, group,
			c.Value, c.Events, c.First.Format(time.RFC3339), c.Last.Format(time.RFC3339))
	}
	verdict := "no match"
	if r.Matched {
		verdict = "MATCH"
		if r.FeedsOnly {
			verdict = "MATCH (feeds a correlation only)"
		}
	}
	sel := "no selection matched"
	if len(r.Selections) > 0 {
		parts := make([]string, 0, len(r.Selections))
		for _, s := range r.Selections {
			var vals []string
			for _, m := range r.Matches {
				if m.Selection == s {
					vals = append(vals, FormatMatch(m))
				}
			}
			if len(vals) > 0 {
				s += " [" + strings.Join(vals, "; ") + "]"
			}
			parts = append(parts, s)
		}
		sel = "matched: " + strings.Join(parts, ", ")
	}
	return fmt.Sprintf("line %d: %s: %s (%s)", r.Line, verdict, r.Title, sel)
}

// FormatMatch renders one matched value as `field="value" (pattern)`,
// the value quoted with Go escapes so that no control character of an
// event reaches the terminal.
func FormatMatch(m vigil.Match) string {
	s := strconv.Quote(m.Value)
	if m.Field != "" {
		s = m.Field + "=" + s
	}
	if m.Pattern != "" {
		s += " (" + m.Pattern + ")"
	}
	return s
}

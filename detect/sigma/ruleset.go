package sigma

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/vigil-iot/vigil/internal/yamlpos"

	"go.yaml.in/yaml/v3"
)

// Reserved field slots: the logsource of an NDJSON event.
const (
	slotProduct = iota
	slotCategory
	slotService
	slotKind
	slotDevice
	slotEventID
	slotTime
	slotEntIP
	slotEntUser
	slotEntHost
	numReserved
)

// reservedNames are the names each reserved slot is read from.
var reservedNames = [numReserved][]string{
	{"logsource.product"}, {"logsource.category"}, {"logsource.service"}, {"kind", "event.kind"},
	{"device_id", "device.id"},
	{"id", "event.id"},
	{"@timestamp", "time", "timestamp"},
	{"source.ip", "c-ip", "src_ip", "SourceIp", "IpAddress", "id.orig_h", "client.ip"},
	{"user.name", "User", "TargetUserName", "cs-username", "mqtt.username"},
	{"host.name", "host", "ComputerName", "Computer", "hostname"},
}

// RuleSet is a set of compiled rules ready to evaluate. It is safe for
// concurrent use once loaded.
type RuleSet struct {
	cfg   *Config
	Rules []*Rule
	// Correlations are the correlation rules, in load order.
	Correlations []*Rule
	filters      []*filterDoc

	fieldIDs   map[string]int // names joined by \x00 → slot
	fieldNames [][]string     // slot → names
	byName     map[string][]int
	byRef      map[string]*Rule
	keys       *keyTable // built from byName once loaded

	mu     sync.RWMutex
	routes map[Logsource]*route
	// Files and Total count what was loaded.
	Files    int
	Total    int
	Rejected int
	// Unvalued counts the compiled rules that expand a placeholder the
	// config declares without values (Rule.Unvalued).
	Unvalued int
	// valueBytes measures the values of the rules compiled so far (see
	// maxSetValueBytes).
	valueBytes int
}

// compiler compiles documents into a rule set.
type compiler struct {
	rs       *RuleSet
	cfg      *Config
	inFilter bool
	// unvalued collects the placeholders declared without values that
	// the document expands.
	unvalued []string
	// values counts the document's values once expanded.
	values int
}

func (cp *compiler) field(name string, ls Logsource) int {
	return cp.fieldExact(cp.cfg.fieldNames(name, ls))
}

// fieldExact returns the slot of a field read under names, in order.
func (cp *compiler) fieldExact(names []string) int {
	key := strings.Join(names, "\x00")
	if id, ok := cp.rs.fieldIDs[key]; ok {
		return id
	}
	id := len(cp.rs.fieldNames)
	cp.rs.fieldIDs[key] = id
	cp.rs.fieldNames = append(cp.rs.fieldNames, names)
	for _, n := range names {
		cp.rs.byName[n] = append(cp.rs.byName[n], id)
	}
	return id
}

// NewRuleSet returns an empty rule set using cfg (nil: the default config).
func NewRuleSet(cfg *Config) *RuleSet {
	if cfg == nil {
		cfg = DefaultConfig()
	}
	rs := &RuleSet{
		cfg:      cfg,
		fieldIDs: map[string]int{},
		byName:   map[string][]int{},
		byRef:    map[string]*Rule{},
		routes:   map[Logsource]*route{},
	}
	cp := &compiler{rs: rs, cfg: cfg}
	for _, names := range reservedNames {
		cp.fieldExact(names)
	}
	return rs
}

// LoadDirs loads every .yml and .yaml file under dirs (recursively; a
// plain file is loaded as is). Files or documents that cannot be compiled
// are returned as errors; the rest of the set loads.
func LoadDirs(dirs []string, cfg *Config) (*RuleSet, []FileError) {
	rs := NewRuleSet(cfg)
	var errs []FileError
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(p string, de fs.DirEntry, err error) error {
			if err != nil {
				errs = append(errs, FileError{File: p, Reason: fmt.Sprintf("cannot read: %v", err)})
				return nil
			}
			if de.IsDir() {
				return nil
			}
			ext := strings.ToLower(filepath.Ext(p))
			if ext != ".yml" && ext != ".yaml" {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				errs = append(errs, FileError{File: p, Reason: fmt.Sprintf("cannot read: %v", err)})
				return nil
			}
			errs = append(errs, rs.add(p, b)...)
			return nil
		})
		if err != nil {
			errs = append(errs, FileError{File: d, Reason: err.Error()})
		}
	}
	errs = append(errs, rs.finish()...)
	return rs, errs
}

// LoadBytes loads rules from one file's content (name is used in errors).
func LoadBytes(name string, b []byte, cfg *Config) (*RuleSet, []FileError) {
	rs := NewRuleSet(cfg)
	errs := rs.add(name, b)
	errs = append(errs, rs.finish()...)
	return rs, errs
}

// add parses and compiles every document of one file.
func (rs *RuleSet) add(file string, b []byte) []FileError {
	rs.Files++
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var errs []FileError
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			rs.Total++
			rs.Rejected++
			errs = append(errs, FileError{File: file, Line: yamlpos.Line(err, b), Reason: "invalid YAML: " + err.Error()})
			break
		}
		if len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		if root.Kind != yaml.MappingNode {
			rs.Total++
			rs.Rejected++
			errs = append(errs, FileError{File: file, Line: root.Line, Reason: "a rule document must be a map"})
			continue
		}
		rs.Total++
		valueBytes := rs.valueBytes
		if err := rs.addDoc(file, root); err != nil {
			rs.valueBytes = valueBytes // a rejected document takes no room
			rs.Rejected++
			fe := FileError{File: file, Line: root.Line, Reason: err.Error()}
			var pe *posError
			if asPos(err, &pe) && pe.line > 0 {
				fe.Line = pe.line
			}
			if t := scalarString(mapGet(root, "id")); t != "" {
				fe.Rule = t
			} else {
				fe.Rule = scalarString(mapGet(root, "title"))
			}
			errs = append(errs, fe)
		}
	}
	return errs
}

func (rs *RuleSet) addDoc(file string, doc *yaml.Node) error {
	r := &Rule{File: file}
	if err := parseHeader(r, doc); err != nil {
		return err
	}
	cp := &compiler{rs: rs, cfg: rs.cfg}
	kind := docKind(doc)
	switch kind {
	case "rule":
		if mapGet(doc, "logsource") == nil {
			return errAt(doc, "missing logsource")
		}
		if err := cp.compileDetection(r, mapGet(doc, "detection")); err != nil {
			return err
		}
	case "filter":
		f, err := cp.compileFilter(r, doc)
		if err != nil {
			return err
		}
		rs.filters = append(rs.filters, f)
		return nil
	case "correlation":
		c, err := parseCorrelation(cp, r, mapGet(doc, "correlation"))
		if err != nil {
			return err
		}
		r.Correlation = c
	default:
		return errAt(doc, "not a Sigma rule: no detection, correlation or filter section")
	}
	// A rule whose id is taken is rejected before it is added.
	if r.ID != "" {
		if o, dup := rs.byRef[r.ID]; dup {
			return errAt(doc, "duplicate rule id %s (also in %s:%d)", r.ID, o.File, o.Line)
		}
	}
	if kind == "rule" {
		r.index = len(rs.Rules)
		rs.Rules = append(rs.Rules, r)
	} else {
		rs.Correlations = append(rs.Correlations, r)
	}
	if len(cp.unvalued) > 0 {
		slices.Sort(cp.unvalued)
		r.Unvalued = slices.Compact(cp.unvalued)
		rs.Unvalued++
	}
	if r.ID != "" {
		rs.byRef[r.ID] = r
	}
	if r.Name != "" {
		rs.byRef[r.Name] = r
	}
	return nil
}

// filterDoc is a compiled meta filter.
type filterDoc struct {
	rule  *Rule
	rules []string
	cond  node
	line  int
}

func (cp *compiler) compileFilter(r *Rule, doc *yaml.Node) (*filterDoc, error) {
	fn := mapGet(doc, "filter")
	if fn.Kind != yaml.MappingNode {
		return nil, errAt(fn, "filter must be a map")
	}
	refs := stringList(mapGet(fn, "rules"))
	if len(refs) == 0 {
		return nil, errAt(fn, "filter without rules")
	}
	cp.inFilter = true
	if err := cp.compileDetection(r, fn); err != nil {
		return nil, err
	}
	return &filterDoc{rule: r, rules: refs, cond: r.cond, line: r.Line}, nil
}

// finish links filters and correlations once every file is loaded.
func (rs *RuleSet) finish() []FileError {
	var errs []FileError
	// Filters narrow the rule: its condition AND the filters' (each
	// filter once, however many times it names the rule).
	narrowed := map[*Rule]andNode{}
	var order []*Rule
	for _, f := range rs.filters {
		seen := map[*Rule]bool{}
		for _, ref := range f.rules {
			r, ok := rs.byRef[ref]
			if !ok || r.Correlation != nil || seen[r] {
				// A filter naming rules that are not loaded is not an
				// error: filters are shared across rule sets.
				continue
			}
			seen[r] = true
			if narrowed[r] == nil {
				narrowed[r] = andNode{r.cond}
				order = append(order, r)
			}
			narrowed[r] = append(narrowed[r], f.cond)
			r.Condition += " | filter " + strconv.Quote(firstNonEmpty(f.rule.Title, f.rule.ID)) + " must hold"
		}
	}
	for _, r := range order {
		r.cond = narrowed[r]
	}
	// Prefilters are chosen once every rule is known: how many rules test
	// a literal tells how common it is.
	df := ruleLitFreq(rs.Rules)
	for _, r := range rs.Rules {
		r.prefilt, r.clauses = df.necessary(r.cond)
	}
	bad := rs.linkCorrelations()
	var keep []*Rule
	for _, c := range rs.Correlations {
		if err := bad[c]; err != nil {
			rs.Rejected++
			errs = append(errs, FileError{File: c.File, Line: c.Line, Rule: firstNonEmpty(c.ID, c.Title), Reason: err.Error()})
			continue
		}
		keep = append(keep, c)
	}
	rs.Correlations = keep
	for _, c := range keep {
		if !c.Correlation.Generate {
			for _, t := range c.Correlation.rules {
				t.silent = true
			}
		}
	}
	for _, c := range keep {
		rs.linkFields(c)
	}
	rs.buildKeys()
	sort.SliceStable(errs, func(i, j int) bool { return errs[i].File < errs[j].File })
	return errs
}

func firstNonEmpty(xs ...string) string {
	for _, x := range xs {
		if x != "" {
			return x
		}
	}
	return ""
}

// Compiled is how many rules (detections and correlations) are usable.
func (rs *RuleSet) Compiled() int { return len(rs.Rules) + len(rs.Correlations) }

// Rule returns a rule by id or name.
func (rs *RuleSet) Rule(ref string) (*Rule, bool) {
	r, ok := rs.byRef[ref]
	return r, ok
}

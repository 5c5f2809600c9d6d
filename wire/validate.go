package wire

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits of the values in a report.
const (
	MaxIDLen        = 128   // device_id, event id
	MaxNameLen      = 128   // metric and field names, kinds, categories, actions
	MaxTextLen      = 1024  // names, versions, purl, cpe, ...
	MaxFieldLen     = 65536 // one security event field value
	MaxMetrics      = 1024  // metrics per report
	MaxEventFields  = 256   // fields per security event
	MinTemperatureC = -100.0
	MaxTemperatureC = 300.0
)

// Problem is one thing wrong with a report: the path of the field in JSON
// names ("health.cpu_pct", "events[3].time") and what is wrong.
type Problem struct {
	Path    string
	Message string
	// Index is the position of the dropped item in its list (events,
	// network.listening, network.interfaces), or -1 when the problem drops
	// a section or the whole report.
	Index int
}

// Error formats the problem as "path: message".
func (p Problem) Error() string { return p.Path + ": " + p.Message }

// ValidationError lists every problem of a report.
type ValidationError struct {
	Problems []Problem
}

// Error lists the first problems.
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("invalid report: ")
	for i, p := range e.Problems {
		if i == 10 {
			fmt.Fprintf(&b, "; and %d more", len(e.Problems)-i)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.Error())
	}
	return b.String()
}

// Validate checks every value of the report and returns a
// *ValidationError listing all problems, or nil.
func (r *Report) Validate() error {
	_, probs := r.Filter()
	if len(probs) == 0 {
		return nil
	}
	return &ValidationError{Problems: probs}
}

// Filter returns the valid part of the report and the problems of the
// parts it dropped. An invalid envelope (version, device_id, time) drops
// the whole report: Filter then returns nil. An invalid health or
// inventory section, or network.connections, is dropped whole; an invalid
// interface, listener or security event is dropped alone. The report
// itself is not changed; the returned one shares its unchanged parts.
func (r *Report) Filter() (*Report, []Problem) {
	var c checker
	switch {
	case r.Version == "":
		c.add("version", -1, "missing")
	case r.Version != Version:
		c.add("version", -1, fmt.Sprintf("unsupported version %q: want %s", r.Version, Version))
	}
	c.id("device_id", -1, r.DeviceID)
	if r.Time.IsZero() {
		c.add("time", -1, "missing")
	}
	c.text("agent.version", -1, r.Agent.Version, MaxTextLen)
	if len(c.probs) > 0 {
		// Report the rest too, so that a client sees everything at once.
		r.filterParts(&c)
		return nil, c.probs
	}
	return r.filterParts(&c), c.probs
}

func (r *Report) filterParts(c *checker) *Report {
	out := *r
	if r.Health != nil && !c.section(func() { c.health(r.Health) }) {
		out.Health = nil
	}
	if r.Inventory != nil && !c.section(func() { c.inventory(r.Inventory) }) {
		out.Inventory = nil
	}
	if r.Network != nil {
		n := *r.Network
		n.Interfaces = keep(r.Network.Interfaces, func(i int, x *Interface) bool {
			return c.section(func() { c.iface(fmt.Sprintf("network.interfaces[%d]", i), i, x) })
		})
		n.Listening = keep(r.Network.Listening, func(i int, x *Listener) bool {
			return c.section(func() { c.listener(fmt.Sprintf("network.listening[%d]", i), i, x) })
		})
		out.Network = &n
	}
	out.Events = keep(r.Events, func(i int, e *SecurityEvent) bool {
		return c.section(func() { c.event(fmt.Sprintf("events[%d]", i), i, e) })
	})
	return &out
}

// keep returns the items for which ok is true; the same slice when all are.
func keep[T any](items []T, ok func(int, *T) bool) []T {
	var out []T
	all := true
	for i := range items {
		if ok(i, &items[i]) {
			out = append(out, items[i])
		} else {
			all = false
		}
	}
	if all {
		return items
	}
	return out
}

type checker struct {
	probs []Problem
}

func (c *checker) add(path string, index int, msg string) {
	c.probs = append(c.probs, Problem{Path: path, Message: msg, Index: index})
}

// section runs fn and says whether it found no problem.
func (c *checker) section(fn func()) bool {
	n := len(c.probs)
	fn()
	return len(c.probs) == n
}

func (c *checker) health(h *Health) {
	c.pct("health.cpu_pct", h.CPU)
	c.pct("health.memory_pct", h.Memory)
	c.pct("health.disk_pct", h.Disk)
	if t := h.Temperature; t != nil && (math.IsNaN(*t) || *t < MinTemperatureC || *t > MaxTemperatureC) {
		c.add("health.temperature_c", -1, fmt.Sprintf("must be %g..%g", MinTemperatureC, MaxTemperatureC))
	}
	if len(h.Metrics) > MaxMetrics {
		c.add("health.metrics", -1, fmt.Sprintf("too many metrics: %d, at most %d", len(h.Metrics), MaxMetrics))
	}
	for _, k := range sortedKeys(h.Metrics) {
		p := "health.metrics[" + strconv.Quote(k) + "]"
		if msg := nameProblem(k); msg != "" {
			c.add(p, -1, msg)
		} else if v := h.Metrics[k]; math.IsNaN(v) || math.IsInf(v, 0) {
			c.add(p, -1, "must be a finite number")
		}
	}
}

func (c *checker) pct(path string, v float64) {
	if math.IsNaN(v) || v < 0 || v > 100 {
		c.add(path, -1, "must be 0..100")
	}
}

func (c *checker) inventory(inv *Inventory) {
	c.text("inventory.os.name", -1, inv.OS.Name, MaxTextLen)
	c.text("inventory.os.version", -1, inv.OS.Version, MaxTextLen)
	c.text("inventory.os.kernel", -1, inv.OS.Kernel, MaxTextLen)
	c.text("inventory.firmware.version", -1, inv.Firmware.Version, MaxTextLen)
	c.text("inventory.firmware.vendor", -1, inv.Firmware.Vendor, MaxTextLen)
	c.text("inventory.firmware.model", -1, inv.Firmware.Model, MaxTextLen)
	c.text("inventory.class", -1, inv.Class, MaxNameLen)
	for i, s := range inv.Software {
		p := fmt.Sprintf("inventory.software[%d]", i)
		if s.Name == "" {
			c.add(p+".name", -1, "missing")
		}
		c.text(p+".name", -1, s.Name, MaxTextLen)
		c.text(p+".version", -1, s.Version, MaxTextLen)
		c.text(p+".type", -1, s.Type, MaxNameLen)
		c.text(p+".source", -1, s.Source, MaxNameLen)
		c.text(p+".purl", -1, s.PURL, MaxTextLen)
		if s.PURL != "" && !strings.HasPrefix(s.PURL, "pkg:") {
			c.add(p+".purl", -1, `must start with "pkg:"`)
		}
		c.text(p+".cpe", -1, s.CPE, MaxTextLen)
		if s.CPE != "" && !strings.HasPrefix(s.CPE, "cpe:") {
			c.add(p+".cpe", -1, `must start with "cpe:"`)
		}
	}
}

func (c *checker) iface(p string, i int, x *Interface) {
	if x.Name == "" {
		c.add(p+".name", i, "missing")
	}
	c.text(p+".name", i, x.Name, MaxNameLen)
	if x.MAC != "" {
		if _, err := net.ParseMAC(x.MAC); err != nil {
			c.add(p+".mac", i, fmt.Sprintf("cannot parse %q as a MAC address", clip(x.MAC)))
		}
	}
	for j, a := range x.Addresses {
		if _, err := netip.ParseAddr(a); err == nil {
			continue
		}
		if _, err := netip.ParsePrefix(a); err == nil {
			continue
		}
		c.add(fmt.Sprintf("%s.addresses[%d]", p, j), i, fmt.Sprintf("cannot parse %q as an IP address", clip(a)))
	}
}

func (c *checker) listener(p string, i int, l *Listener) {
	switch strings.ToLower(l.Proto) {
	case "tcp", "udp", "tcp6", "udp6", "sctp":
	case "":
		c.add(p+".proto", i, "missing")
	default:
		c.add(p+".proto", i, fmt.Sprintf("unknown protocol %q: want tcp, udp or sctp", clip(l.Proto)))
	}
	if l.Port == 0 {
		c.add(p+".port", i, "must be 1..65535")
	}
	if l.Addr != "" && l.Addr != "*" {
		if _, err := netip.ParseAddr(l.Addr); err != nil {
			c.add(p+".addr", i, fmt.Sprintf("cannot parse %q as an IP address", clip(l.Addr)))
		}
	}
	c.text(p+".process", i, l.Process, MaxTextLen)
	if l.PID < 0 {
		c.add(p+".pid", i, "must be ≥ 0")
	}
}

func (c *checker) event(p string, i int, e *SecurityEvent) {
	if e.ID != "" {
		c.id(p+".id", i, e.ID)
	}
	if e.Time.IsZero() {
		c.add(p+".time", i, "missing")
	}
	switch {
	case e.Kind == "":
		c.add(p+".kind", i, "missing")
	case e.Kind == "health" || e.Kind == "inventory":
		c.add(p+".kind", i, fmt.Sprintf("%q is reserved for the %s section", e.Kind, e.Kind))
	case !isToken(e.Kind):
		c.add(p+".kind", i, fmt.Sprintf("%q: want a lowercase word of letters, digits, '_', '-' or '.'", clip(e.Kind)))
	}
	c.text(p+".category", i, e.Category, MaxNameLen)
	c.text(p+".action", i, e.Action, MaxNameLen)
	switch e.Outcome {
	case "", "success", "failure", "unknown":
	default:
		c.add(p+".outcome", i, fmt.Sprintf("unknown outcome %q: want success, failure or unknown", clip(e.Outcome)))
	}
	if e.Severity != "" && !validSeverity(e.Severity) {
		c.add(p+".severity", i, fmt.Sprintf("unknown severity %q: want informational, low, medium, high or critical", clip(e.Severity)))
	}
	if len(e.Fields) > MaxEventFields {
		c.add(p+".fields", i, fmt.Sprintf("too many fields: %d, at most %d", len(e.Fields), MaxEventFields))
	}
	for _, k := range sortedKeys(e.Fields) {
		fp := p + ".fields[" + strconv.Quote(k) + "]"
		if msg := nameProblem(k); msg != "" {
			c.add(fp, i, msg)
			continue
		}
		v := e.Fields[k]
		if len(v) > MaxFieldLen {
			c.add(fp, i, fmt.Sprintf("longer than %d bytes", MaxFieldLen))
		} else if !textOK(v, true) {
			c.add(fp, i, "holds a control character or invalid UTF-8")
		}
	}
}

// SeverityNames are the severity names a security event may carry, lowest
// first; "info" and the numbers 1 to 5 are read too.
var SeverityNames = []string{"informational", "low", "medium", "high", "critical"}

func validSeverity(s string) bool {
	s = strings.ToLower(strings.TrimSpace(s))
	switch s {
	case "info", "1", "2", "3", "4", "5":
		return true
	}
	for _, n := range SeverityNames {
		if s == n {
			return true
		}
	}
	return false
}

func (c *checker) id(path string, index int, s string) {
	switch {
	case s == "":
		c.add(path, index, "missing")
	case len(s) > MaxIDLen:
		c.add(path, index, fmt.Sprintf("longer than %d bytes", MaxIDLen))
	default:
		for _, r := range s {
			if !isIDRune(r) {
				c.add(path, index, fmt.Sprintf("%q: want letters, digits, '.', '_', ':', '@' or '-'", clip(s)))
				return
			}
		}
	}
}

func (c *checker) text(path string, index int, s string, max int) {
	if len(s) > max {
		c.add(path, index, fmt.Sprintf("longer than %d bytes", max))
	} else if !textOK(s, false) {
		c.add(path, index, "holds a control character or invalid UTF-8")
	}
}

// textOK says whether s is valid UTF-8 without control characters
// (multiline allows tab, line feed and carriage return).
func textOK(s string, multiline bool) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			if !multiline || (r != '\t' && r != '\n' && r != '\r') {
				return false
			}
		} else if r == 0xFFFE || r == 0xFFFF {
			return false
		}
	}
	return true
}

// nameProblem checks a metric or field name.
func nameProblem(k string) string {
	switch {
	case k == "":
		return "empty name"
	case len(k) > MaxNameLen:
		return fmt.Sprintf("name longer than %d bytes", MaxNameLen)
	}
	for _, r := range k {
		if !isIDRune(r) && r != '/' {
			return "name must hold only letters, digits, '.', '_', ':', '@', '/' or '-'"
		}
	}
	return ""
}

func isIDRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		r == '.' || r == '_' || r == '-' || r == ':' || r == '@'
}

func isToken(s string) bool {
	if len(s) > MaxNameLen {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

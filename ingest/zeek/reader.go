package zeek

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigil-iot/vigil/ingest/nsm"
	"github.com/vigil-iot/vigil/proto"
)

// ErrUnsupported is returned (wrapped) by Reader.Next for a TSV log whose
// #path is not one Vigil converts (files, x509, ...): the caller may skip
// the file.
var ErrUnsupported = errors.New("unsupported zeek log")

// ErrHeader is matched (errors.Is) by errors in a TSV log's headers (a
// #fields line without a field its path needs): the records that follow
// cannot be read, and the caller should skip the rest of the input.
var ErrHeader = errors.New("bad zeek log header")

// headerError is an error in a header; it matches ErrHeader.
type headerError struct{ error }

func (e headerError) Is(target error) bool { return target == ErrHeader }

// RecordError is an error in one record (a line) of the input: what and
// where. The reader goes on with the next line.
type RecordError struct {
	Name string // the input
	Line int    // from 1
	Msg  string
}

func (e *RecordError) Error() string { return e.Name + ":" + strconv.Itoa(e.Line) + ": " + e.Msg }

// MaxLine is the longest line a Reader accepts, in bytes.
const MaxLine = 1 << 20

// Options configure a Reader.
type Options struct {
	// Name names the input in errors (a file name).
	Name string
	// Path is the log's path (conn, dns, ...) when the input does not say
	// it: JSON lines without a _path field. PathOf(file name) gives it
	// from a file name. A TSV #path header and a JSON _path win over it.
	Path string
	// Arena, when set, supplies the field storage of events (the caller
	// resets it once it is done with them). Nil allocates per event.
	Arena *proto.FieldArena
}

// Stats count what a Reader did.
type Stats struct {
	Records int // data lines read
	Events  int // events made
	Skipped int // JSON records of a path that is not converted
}

// Reader reads one Zeek log, in Zeek's TSV format (with its # headers) or
// as JSON lines (LogAscii::use_json, epoch or ISO 8601 times), detected
// from the first line that is not a comment, and converts each record
// into the sensor's events (Next). Not safe for concurrent use.
type Reader struct {
	opt   Options
	lines *nsm.Lines
	line  int
	stats Stats
	json  int // 0 not known yet, 1 JSON, -1 TSV
	rec   record
	conv  *converter
	path  string // the converter's path
	jp    fastjson.Parser
}

// NewReader returns a reader of the log in r.
func NewReader(r io.Reader, opt Options) *Reader {
	rd := &Reader{opt: opt, lines: nsm.NewLines(r, MaxLine)}
	rd.rec.sep = "\t"
	rd.rec.setSep = ","
	rd.rec.empty = "(empty)"
	rd.rec.unset = "-"
	return rd
}

// PathOf returns the log path a file name implies: "conn" for conn.log,
// conn.log.gz, conn.00:00:00-01:00:00.log.gz or conn.json.
func PathOf(name string) string {
	base := filepath.Base(name)
	if i := strings.IndexByte(base, '.'); i > 0 {
		return base[:i]
	}
	return base
}

// Stats returns what the reader did so far.
func (r *Reader) Stats() Stats { return r.stats }

// errorf returns an error saying where in the input it happened.
func (r *Reader) errorf(format string, args ...any) error {
	return &RecordError{r.opt.Name, r.line, fmt.Sprintf(format, args...)}
}

// readLine returns the next line without its line end, valid until the
// next call.
func (r *Reader) readLine() ([]byte, error) {
	l, err := r.lines.Next()
	r.line = r.lines.Line
	switch {
	case err == nsm.ErrLongLine:
		return nil, &RecordError{r.opt.Name, r.line, fmt.Sprintf("line longer than %d bytes", MaxLine)}
	case err == io.EOF:
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("cannot read %s: %w", r.opt.Name, err)
	}
	return l, nil
}

// Next appends to dst the events of the next record and returns it: none
// for a record that says nothing the sensor would (or a JSON record of a
// path Vigil does not convert), one, or two (a DNS query and its
// response). At the end of the input it returns io.EOF. An error names the
// input, its line and the field at fault; the reader may go on after it
// with the next line, except after ErrUnsupported or an I/O error.
func (r *Reader) Next(dst []proto.Event) ([]proto.Event, error) {
	for {
		l, err := r.readLine()
		if err != nil {
			return dst, err
		}
		if len(l) == 0 {
			continue
		}
		if l[0] == '#' {
			if r.json == 1 {
				continue
			}
			if err := r.header(string(l)); err != nil {
				return dst, err
			}
			continue
		}
		if r.json == 0 {
			r.json = -1
			if l[0] == '{' {
				r.json = 1
			}
		}
		r.stats.Records++
		n := len(dst)
		if r.json == 1 {
			dst, err = r.jsonRecord(dst, l)
		} else {
			dst, err = r.tsvRecord(dst, l)
		}
		r.stats.Events += len(dst) - n
		if err != nil {
			return dst[:n], err
		}
		if len(dst) > n {
			return dst, nil
		}
	}
}

// header reads a # line of a TSV log.
func (r *Reader) header(l string) error {
	name, val, _ := strings.Cut(l, r.rec.sep)
	if name == "#separator" {
		// "#separator \x09": the only header separated by a space.
		_, v, ok := strings.Cut(l, " ")
		if !ok {
			return headerError{r.errorf("#separator without a value")}
		}
		s := unescape(v)
		if s == "" {
			return headerError{r.errorf("#separator %q is empty", v)}
		}
		r.rec.sep = s
		return nil
	}
	switch name {
	case "#set_separator":
		r.rec.setSep = unescape(val)
	case "#empty_field":
		r.rec.empty = unescape(val)
	case "#unset_field":
		r.rec.unset = unescape(val)
	case "#path":
		r.opt.Path = val
	case "#fields":
		r.rec.names = strings.Split(val, r.rec.sep)
		// The labelled conn logs of IoT-23 (Stratosphere Lab) append
		// "label" and "detailed-label" to the last column, separated by
		// three spaces instead of the separator, in the header and in
		// every record: read them as columns of their own.
		r.rec.spaced = 0
		if last := r.rec.names[len(r.rec.names)-1]; strings.Contains(last, "   ") {
			more := strings.Split(last, "   ")
			r.rec.names = append(r.rec.names[:len(r.rec.names)-1], more...)
			r.rec.spaced = len(more)
		}
		r.rec.idx = make(map[string]int, len(r.rec.names))
		r.rec.cache = r.rec.cache[:0]
		for i, n := range r.rec.names {
			r.rec.idx[n] = i
		}
		r.json = -1
		conv, ok := converters[r.opt.Path]
		if !ok {
			return fmt.Errorf("%s: cannot convert log %q: %w", r.opt.Name, r.opt.Path, ErrUnsupported)
		}
		r.conv, r.path = conv, r.opt.Path
		if missing := conv.require(&r.rec); missing != "" {
			r.conv = nil
			return headerError{r.errorf("%s log without the field %s", r.opt.Path, missing)}
		}
	case "#types":
		r.rec.types = strings.Split(val, r.rec.sep)
	}
	// #open, #close and comments say nothing a record needs.
	return nil
}

func (r *Reader) tsvRecord(dst []proto.Event, l []byte) ([]proto.Event, error) {
	if r.conv == nil {
		return dst, r.errorf("a record before the #fields header")
	}
	line := string(l)
	cols := r.rec.cols[:0]
	sep := r.rec.sep
	for {
		var i int
		if len(sep) == 1 {
			i = strings.IndexByte(line, sep[0])
		} else {
			i = strings.Index(line, sep)
		}
		if i < 0 {
			cols = append(cols, line)
			break
		}
		cols = append(cols, line[:i])
		line = line[i+len(sep):]
	}
	if r.rec.spaced > 0 && len(cols) > 0 {
		last := cols[len(cols)-1]
		cols = cols[:len(cols)-1]
		for i := 1; i < r.rec.spaced; i++ {
			j := strings.Index(last, "   ")
			if j < 0 {
				break
			}
			cols = append(cols, last[:j])
			last = last[j+3:]
		}
		cols = append(cols, last)
	}
	r.rec.cols = cols
	r.rec.cur = 0
	if len(cols) != len(r.rec.names) {
		return dst, r.errorf("%d fields where the #fields header names %d", len(cols), len(r.rec.names))
	}
	r.rec.obj = nil
	dst, err := r.conv.run(dst, &r.rec, r.opt.Arena)
	if err != nil {
		return dst, r.errorf("%v", err)
	}
	return dst, nil
}

func (r *Reader) jsonRecord(dst []proto.Event, l []byte) ([]proto.Event, error) {
	v, err := r.jp.ParseBytes(l)
	if err != nil {
		return dst, r.errorf("not a JSON object: %v", err)
	}
	obj, err := v.Object()
	if err != nil {
		return dst, r.errorf("not a JSON object: %v", err)
	}
	path := r.opt.Path
	if p := obj.Get("_path"); p != nil {
		if b, err := p.StringBytes(); err == nil {
			path = string(b)
		}
	}
	if path != r.path || r.conv == nil {
		conv, ok := converters[path]
		if !ok {
			r.stats.Skipped++
			return dst, nil
		}
		r.conv, r.path = conv, path
	}
	r.rec.obj = obj
	r.rec.cols = r.rec.cols[:0]
	dst, err = r.conv.run(dst, &r.rec, r.opt.Arena)
	if err != nil {
		return dst, r.errorf("%v", err)
	}
	return dst, nil
}

// record is one record, TSV columns or a JSON object, read by field name.
type record struct {
	// TSV
	sep, setSep, empty, unset string
	names, types              []string
	idx                       map[string]int
	cols                      []string
	spaced                    int // the last column holds this many, three spaces apart (IoT-23)
	// cache remembers the column of the n-th field a converter asks
	// for: converters ask for the same fields in the same order on
	// every record, so a comparison of the name (the same string
	// constant: its pointer) replaces a map lookup. cur is the next.
	cache []cached
	cur   int
	// JSON
	obj *fastjson.Object
}

// has reports whether the log has the field name (set or not).
func (r *record) has(name string) bool {
	if r.obj != nil {
		return true
	}
	_, ok := r.idx[name]
	return ok
}

type cached struct {
	name string
	col  int
}

// column returns the TSV column of a field, -1 when the log has none.
func (r *record) column(name string) int {
	if r.cur < len(r.cache) {
		c := &r.cache[r.cur]
		r.cur++
		if c.name == name {
			return c.col
		}
		col, ok := r.idx[name]
		if !ok {
			col = -1
		}
		*c = cached{name, col}
		return col
	}
	col, ok := r.idx[name]
	if !ok {
		col = -1
	}
	if len(r.cache) < 64 {
		r.cache = append(r.cache, cached{name, col})
		r.cur++
	}
	return col
}

// raw returns the TSV text of a field, false when absent or unset.
func (r *record) raw(name string) (string, bool) {
	i := r.column(name)
	if i < 0 || i >= len(r.cols) {
		return "", false
	}
	s := r.cols[i]
	if s == r.unset {
		return "", false
	}
	return s, true
}

// json returns the JSON value of a field, nil when absent or null.
func (r *record) json(name string) *fastjson.Value {
	v := r.obj.Get(name)
	if v == nil || v.Type() == fastjson.TypeNull {
		return nil
	}
	return v
}

// str returns a string field, unescaped, and false when it is unset.
func (r *record) str(name string) (string, bool, error) {
	if r.obj != nil {
		v := r.json(name)
		if v == nil {
			return "", false, nil
		}
		switch v.Type() {
		case fastjson.TypeString:
			b, _ := v.StringBytes()
			return string(b), true, nil
		case fastjson.TypeNumber:
			return string(v.MarshalTo(nil)), true, nil
		case fastjson.TypeTrue:
			return "T", true, nil
		case fastjson.TypeFalse:
			return "F", true, nil
		}
		return "", false, fmt.Errorf("field %s: not a string", name)
	}
	s, ok := r.raw(name)
	if !ok {
		return "", false, nil
	}
	if s == r.empty {
		return "", true, nil
	}
	return unescape(s), true, nil
}

// list returns a set or vector field.
func (r *record) list(name string) ([]string, bool, error) {
	if r.obj != nil {
		v := r.json(name)
		if v == nil {
			return nil, false, nil
		}
		a, err := v.Array()
		if err != nil {
			return nil, false, fmt.Errorf("field %s: not a list", name)
		}
		out := make([]string, 0, len(a))
		for _, e := range a {
			switch e.Type() {
			case fastjson.TypeString:
				b, _ := e.StringBytes()
				out = append(out, string(b))
			case fastjson.TypeNumber:
				out = append(out, string(e.MarshalTo(nil)))
			default:
				return nil, false, fmt.Errorf("field %s: a list element is not a string or number", name)
			}
		}
		return out, true, nil
	}
	s, ok := r.raw(name)
	if !ok {
		return nil, false, nil
	}
	if s == r.empty {
		return []string{}, true, nil
	}
	out := strings.Split(s, r.setSep)
	for i, e := range out {
		out[i] = unescape(e)
	}
	return out, true, nil
}

// num returns a count, int, double, interval or port field.
func (r *record) num(name string) (float64, bool, error) {
	if r.obj != nil {
		v := r.json(name)
		if v == nil {
			return 0, false, nil
		}
		f, err := v.Float64()
		if err != nil {
			return 0, false, fmt.Errorf("field %s: not a number", name)
		}
		return f, true, nil
	}
	s, ok := r.raw(name)
	if !ok {
		return 0, false, nil
	}
	if n, ok := uintValue(s); ok {
		return n, true, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false, fmt.Errorf("field %s: %q is not a number", name, s)
	}
	return f, true, nil
}

// boolean returns a bool field (T/F in TSV).
func (r *record) boolean(name string) (bool, bool, error) {
	if r.obj != nil {
		v := r.json(name)
		if v == nil {
			return false, false, nil
		}
		switch v.Type() {
		case fastjson.TypeTrue:
			return true, true, nil
		case fastjson.TypeFalse:
			return false, true, nil
		}
		return false, false, fmt.Errorf("field %s: not a bool", name)
	}
	s, ok := r.raw(name)
	if !ok {
		return false, false, nil
	}
	switch s {
	case "T":
		return true, true, nil
	case "F":
		return false, true, nil
	}
	return false, false, fmt.Errorf("field %s: %q is not T or F", name, s)
}

// addr returns an addr field.
func (r *record) addr(name string) (netip.Addr, bool, error) {
	var s string
	if r.obj != nil {
		v := r.json(name)
		if v == nil {
			return netip.Addr{}, false, nil
		}
		b, err := v.StringBytes()
		if err != nil {
			return netip.Addr{}, false, fmt.Errorf("field %s: not a string", name)
		}
		s = string(b)
	} else {
		var ok bool
		if s, ok = r.raw(name); !ok {
			return netip.Addr{}, false, nil
		}
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false, fmt.Errorf("field %s: %q is not an IP address", name, s)
	}
	return a.Unmap(), true, nil
}

// port returns a port field.
func (r *record) port(name string) (uint16, error) {
	if r.obj != nil {
		f, ok, err := r.num(name)
		if err != nil || !ok {
			return 0, err
		}
		if f < 0 || f > 65535 || f != math.Trunc(f) {
			return 0, fmt.Errorf("field %s: %v is not a port", name, f)
		}
		return uint16(f), nil
	}
	s, ok := r.raw(name)
	if !ok {
		return 0, nil
	}
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("field %s: %q is not a port", name, s)
	}
	return uint16(p), nil
}

// time returns a time field: epoch seconds with decimals (TSV and
// default JSON) or ISO 8601 (JSON with LogAscii::json_timestamps).
func (r *record) time(name string) (time.Time, bool, error) {
	if r.obj != nil {
		v := r.json(name)
		if v == nil {
			return time.Time{}, false, nil
		}
		switch v.Type() {
		case fastjson.TypeNumber:
			f, _ := v.Float64()
			if f < minEpoch || f >= maxEpoch {
				return time.Time{}, false, fmt.Errorf("field %s: %v is out of range", name, f)
			}
			sec := math.Floor(f)
			ns := math.Round((f - sec) * 1e6) // Zeek writes microseconds
			return time.Unix(int64(sec), int64(ns)*1e3).UTC(), true, nil
		case fastjson.TypeString:
			b, _ := v.StringBytes()
			t, err := time.Parse(time.RFC3339Nano, string(b))
			if err == nil && (t.Unix() < minEpoch || t.Unix() >= maxEpoch) {
				err = fmt.Errorf("out of range")
			}
			if err != nil {
				return time.Time{}, false, fmt.Errorf("field %s: %q is not an ISO 8601 time", name, b)
			}
			return t.UTC(), true, nil
		}
		return time.Time{}, false, fmt.Errorf("field %s: not a time", name)
	}
	s, ok := r.raw(name)
	if !ok {
		return time.Time{}, false, nil
	}
	t, ok := epoch(s)
	if !ok {
		return time.Time{}, false, fmt.Errorf("field %s: %q is not a time (seconds since 1970)", name, s)
	}
	return t, true, nil
}

// minEpoch and maxEpoch are 0001-01-01 and 10000-01-01 in seconds since
// 1970: events carry the years 1 to 9999.
const (
	minEpoch = -62135596800
	maxEpoch = 253402300800
)

// epoch parses "1300475167.096535" without the cost of ParseFloat and
// its rounding.
func epoch(s string) (time.Time, bool) {
	neg := false
	if len(s) > 0 && s[0] == '-' {
		neg, s = true, s[1:]
	}
	ip, fp, _ := strings.Cut(s, ".")
	if len(ip) == 0 || len(ip) > 11 || len(fp) > 9 {
		return time.Time{}, false
	}
	var sec, ns int64
	for i := 0; i < len(ip); i++ {
		c := ip[i]
		if c < '0' || c > '9' {
			return time.Time{}, false
		}
		sec = sec*10 + int64(c-'0')
	}
	for i := 0; i < 9; i++ {
		ns *= 10
		if i < len(fp) {
			c := fp[i]
			if c < '0' || c > '9' {
				return time.Time{}, false
			}
			ns += int64(c - '0')
		}
	}
	if neg {
		sec, ns = -sec, -ns
	}
	if sec < minEpoch || sec >= maxEpoch {
		return time.Time{}, false // events carry years 1 to 9999
	}
	return time.Unix(sec, ns).UTC(), true
}

// unescape undoes Zeek's escaping of a TSV value: \xHH for bytes that are
// not printable or that are a separator, and \\ for a backslash.
func unescape(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b = append(b, c)
			continue
		}
		if i+1 < len(s) && s[i+1] == '\\' {
			b = append(b, '\\')
			i++
			continue
		}
		if i+3 < len(s) && s[i+1] == 'x' {
			h, err := strconv.ParseUint(s[i+2:i+4], 16, 8)
			if err == nil {
				b = append(b, byte(h))
				i += 3
				continue
			}
		}
		// A lone backslash: Zeek wrote it as it was.
		b = append(b, c)
	}
	return string(b)
}

// uintValue parses a count of up to 15 digits, exactly, faster than
// ParseFloat.
func uintValue(s string) (float64, bool) {
	if len(s) == 0 || len(s) > 15 {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return float64(n), true
}

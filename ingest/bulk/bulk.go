package bulk

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/valyala/fastjson"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/ingest"
)

// Source is the Source of events that do not name their own.
const Source = "bulk"

// ReservedSource is the Source of events made from agent reports
// (ingest/agent.Source): a bulk event may not claim it, so that what an
// agent reported about its own device cannot be forged in bulk.
const ReservedSource = "agent"

// Limits of one item.
const (
	MaxIDLen   = 128
	MaxKindLen = 128
	MaxFields  = 512
)

// ItemError is one rejected item.
type ItemError struct {
	// Index is the item's position from 0 (blank lines are not items).
	Index int
	// Line is the item's line from 1, 0 for an item of a JSON array.
	Line int
	// Offset is the byte offset of the item's line, -1 for an item of a
	// JSON array.
	Offset int64
	// Field is the field at fault, empty when the item is not an object.
	Field string
	Msg   string
}

// Error formats the error as `line 7 (offset 812): time: cannot parse "yesterday"`.
func (e *ItemError) Error() string {
	var where string
	if e.Line > 0 {
		where = "line " + strconv.Itoa(e.Line) + " (offset " + strconv.FormatInt(e.Offset, 10) + ")"
	} else {
		where = "item " + strconv.Itoa(e.Index)
	}
	if e.Field != "" {
		return where + ": " + e.Field + ": " + e.Msg
	}
	return where + ": " + e.Msg
}

var parsers fastjson.ParserPool

// errMissing is the error of a required field that is absent.
var errMissing = errors.New("missing")

// DefaultMaxErrors is how many ItemErrors a Result keeps by default: a
// body of a million bad lines must not cost a million error objects.
const DefaultMaxErrors = 100

// Options are the settings of DecodeLines and DecodeJSONArray.
type Options struct {
	// Received is when the body was received: every event gets it.
	Received time.Time
	// MaxFuture, when positive, is how far after Received an event's time
	// may be (clock skew); later events are rejected.
	MaxFuture time.Duration
	// MaxErrors is how many ItemErrors to keep (DefaultMaxErrors when
	// zero); every rejected item is counted in Result.Rejected.
	MaxErrors int
	// Check, when set, is called with every event that decoded; an error
	// rejects the event, with the field at fault.
	Check func(e *vigil.Event) (field string, err error)
}

// Result is what DecodeLines and DecodeJSONArray make of a body.
type Result struct {
	// Events are the accepted events, in order.
	Events []vigil.Event
	// Errors are the first rejections (at most Options.MaxErrors), in
	// order; an Index of -1 means the body as a whole is unreadable.
	Errors []*ItemError
	// Rejected counts every rejected item.
	Rejected int
}

// reject counts a rejected item and keeps its error while there is room;
// the error is allocated only then.
func (r *Result) reject(o *Options, e ItemError) {
	r.Rejected++
	max := o.MaxErrors
	if max == 0 {
		max = DefaultMaxErrors
	}
	if len(r.Errors) < max {
		kept := new(ItemError)
		*kept = e
		r.Errors = append(r.Errors, kept)
	}
}

// maxPrealloc bounds the events allocated ahead of decoding: a body of
// tiny bad lines must not cost an event per line. A body of mostly valid
// lines gets room for all of its lines once the first maxPrealloc are in.
const maxPrealloc = 256

// Decode reads newline-delimited JSON events from data. It returns the
// events of the valid lines and an error for each of the first
// DefaultMaxErrors other lines; blank lines are skipped. Every event gets
// the received time.
func Decode(data []byte, received time.Time) ([]vigil.Event, []*ItemError) {
	r := DecodeLines(data, Options{Received: received})
	return r.Events, r.Errors
}

// DecodeLines reads newline-delimited JSON events from data; blank lines
// are skipped.
func DecodeLines(data []byte, o Options) Result {
	p := parsers.Get()
	defer parsers.Put(p)
	d := decoder{received: o.Received, maxFuture: o.MaxFuture, keys: map[string]string{}}
	res := Result{Events: make([]vigil.Event, 0, min(bytes.Count(data, []byte{'\n'})+1, maxPrealloc))}
	index, line := 0, 0
	for off := 0; off < len(data); {
		line++
		end := bytes.IndexByte(data[off:], '\n')
		var l []byte
		next := len(data)
		if end < 0 {
			l = data[off:]
		} else {
			l = data[off : off+end]
			next = off + end + 1
		}
		start := off
		off = next
		if n := len(l); n > 0 && l[n-1] == '\r' {
			l = l[:n-1]
		}
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		e := &d.scratch
		*e = vigil.Event{}
		field, err := d.line(p, l, e)
		if err == nil && o.Check != nil {
			field, err = o.Check(e)
		}
		if err != nil {
			res.reject(&o, ItemError{Index: index, Line: line, Offset: int64(start), Field: field, Msg: err.Error()})
		} else {
			if len(res.Events) == cap(res.Events) && res.Rejected <= len(res.Events) {
				// Mostly valid so far: make room for every line left
				// at once rather than doubling.
				res.Events = slices.Grow(res.Events, bytes.Count(data[off:], []byte{'\n'})+1)
			}
			res.Events = append(res.Events, *e)
		}
		index++
	}
	return res
}

// DecodeArray reads a JSON array of events from data.
func DecodeArray(data []byte, received time.Time) ([]vigil.Event, []*ItemError) {
	r := DecodeJSONArray(data, Options{Received: received})
	return r.Events, r.Errors
}

// DecodeJSONArray reads a JSON array of events from data.
func DecodeJSONArray(data []byte, o Options) Result {
	p := parsers.Get()
	defer parsers.Put(p)
	v, err := p.ParseBytes(data)
	if err != nil {
		return Result{Errors: []*ItemError{{Index: -1, Offset: -1, Msg: "invalid JSON: " + cleanParseError(err)}}, Rejected: 1}
	}
	items, err := v.Array()
	if err != nil {
		return Result{Errors: []*ItemError{{Index: -1, Offset: -1, Msg: "want a JSON array of events"}}, Rejected: 1}
	}
	d := decoder{received: o.Received, maxFuture: o.MaxFuture, keys: map[string]string{}}
	res := Result{Events: make([]vigil.Event, 0, min(len(items), maxPrealloc))}
	for i, it := range items {
		e := &d.scratch
		*e = vigil.Event{}
		field, err := d.value(it, e)
		if err == nil && o.Check != nil {
			field, err = o.Check(e)
		}
		if err != nil {
			res.reject(&o, ItemError{Index: i, Offset: -1, Field: field, Msg: err.Error()})
			continue
		}
		res.Events = append(res.Events, *e)
	}
	return res
}

type decoder struct {
	received  time.Time
	maxFuture time.Duration // > 0: refuse times after received+maxFuture
	// keys interns field names across the items of one body.
	keys map[string]string
	// scratch is the event being decoded: one allocation per body, not
	// per item (a bad item then costs nothing that lasts).
	scratch vigil.Event
}

func (d *decoder) line(p *fastjson.Parser, l []byte, e *vigil.Event) (string, error) {
	v, err := p.ParseBytes(l)
	if err != nil {
		return "", errors.New("invalid JSON: " + cleanParseError(err))
	}
	return d.value(v, e)
}

func cleanParseError(err error) string {
	s := strings.TrimPrefix(err.Error(), "cannot parse JSON: ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

func (d *decoder) intern(k []byte) string {
	if s, ok := d.keys[string(k)]; ok {
		return s
	}
	s := string(k)
	if len(d.keys) < 4096 {
		d.keys[s] = s
	}
	return s
}

// value fills e from one JSON value and returns the field at fault.
func (d *decoder) value(v *fastjson.Value, e *vigil.Event) (string, error) {
	o, err := v.Object()
	if err != nil {
		return "", fmt.Errorf("want a JSON object, have %s", v.Type())
	}
	var (
		field  string
		ferr   error
		tset   bool
		ecsSrc *fastjson.Object
	)
	fail := func(f string, err error) {
		if ferr == nil {
			field, ferr = f, err
		}
	}
	o.Visit(func(key []byte, v *fastjson.Value) {
		if ferr != nil {
			return
		}
		switch string(key) {
		case "id", "event.id":
			s, err := str(v, MaxIDLen)
			if err != nil {
				fail(string(key), err)
			}
			e.ID = s
		case "time", "@timestamp":
			t, err := parseTime(v)
			if err != nil {
				fail(string(key), err)
			}
			e.Time, tset = t, true
		case "received":
		case "provenance", "event.provenance":
			fail(string(key), errors.New("is set by the server from the sender's credentials: a body may not give it"))
		case "device_id", "device.id":
			s, err := str(v, MaxIDLen)
			if err == nil && !validID(s) {
				err = fmt.Errorf("%q: want letters, digits, '.', '_', ':', '@' or '-'", s)
			}
			if err != nil {
				fail(string(key), err)
			}
			e.DeviceID = s
		case "source":
			if so, err := v.Object(); err == nil {
				ecsSrc = so // ECS source.{ip,port,...}
				return
			}
			s, err := str(v, MaxKindLen)
			if err == nil && s == ReservedSource {
				err = fmt.Errorf("%q is reserved for agent reports (POST /api/v1/agent/report)", s)
			}
			if err != nil {
				fail("source", err)
			}
			e.Source = s
		case "kind":
			s, err := str(v, MaxKindLen)
			if err != nil {
				fail("kind", err)
			}
			e.Kind = s
		case "category", "event.category":
			s, err := strOrFirst(v)
			if err != nil {
				fail(string(key), err)
			}
			e.Category = s
		case "action", "event.action":
			s, err := str(v, MaxKindLen)
			if err != nil {
				fail(string(key), err)
			}
			e.Action = s
		case "outcome", "event.outcome":
			s, err := str(v, MaxKindLen)
			if err == nil && s != "" && s != vigil.OutcomeSuccess && s != vigil.OutcomeFailure && s != vigil.OutcomeUnknown {
				err = fmt.Errorf("unknown outcome %q: want success, failure or unknown", s)
			}
			if err != nil {
				fail(string(key), err)
			}
			e.Outcome = s
		case "severity":
			sev, err := parseSeverity(v)
			if err != nil {
				fail("severity", err)
			}
			e.Severity = sev
		case "network":
			if f, err := d.network(v, e); err != nil {
				fail(f, err)
			}
		case "fields":
			fo, err := v.Object()
			if err != nil {
				fail("fields", errors.New("want an object"))
				return
			}
			fo.Visit(func(k []byte, fv *fastjson.Value) {
				if ferr != nil {
					return
				}
				if f, err := d.field(e, "", k, fv); err != nil {
					fail(f, err)
				}
			})
		default:
			if f, err := d.field(e, "", key, v); err != nil {
				fail(f, err)
			}
		}
	})
	if ferr == nil && ecsSrc != nil {
		ecsSrc.Visit(func(k []byte, fv *fastjson.Value) {
			if ferr != nil {
				return
			}
			if f, err := d.field(e, "source.", k, fv); err != nil {
				fail(f, err)
			}
		})
	}
	switch {
	case ferr != nil:
		return field, ferr
	case !tset || e.Time.IsZero():
		return "time", errMissing
	case e.Kind == "":
		return "kind", errMissing
	case len(e.Fields) > MaxFields:
		return "fields", fmt.Errorf("too many fields: %d, at most %d", len(e.Fields), MaxFields)
	case d.maxFuture > 0:
		if err := ingest.CheckFuture(e.Time, d.received, d.maxFuture); err != nil {
			return "time", err
		}
	}
	if e.ID == "" {
		e.ID = vigil.NewID()
	}
	if e.Source == "" {
		e.Source = Source
	}
	e.Received = d.received
	ingest.LiftNetwork(e)
	return "", nil
}

// network reads the vigil.Network shape; other keys become network.* fields.
func (d *decoder) network(v *fastjson.Value, e *vigil.Event) (string, error) {
	o, err := v.Object()
	if err != nil {
		return "network", errors.New("want an object")
	}
	if e.Network == nil {
		e.Network = &vigil.Network{}
	}
	n := e.Network
	var (
		field string
		ferr  error
	)
	o.Visit(func(k []byte, fv *fastjson.Value) {
		if ferr != nil {
			return
		}
		switch string(k) {
		case "transport":
			s, err := str(fv, MaxKindLen)
			field, ferr = "network.transport", err
			n.Transport = strings.ToLower(s)
		case "src_ip":
			field, ferr = "network.src_ip", parseIP(fv, &n.SrcIP)
		case "dst_ip":
			field, ferr = "network.dst_ip", parseIP(fv, &n.DstIP)
		case "src_port":
			field, ferr = "network.src_port", parsePort(fv, &n.SrcPort)
		case "dst_port":
			field, ferr = "network.dst_port", parsePort(fv, &n.DstPort)
		default:
			field, ferr = d.field(e, "network.", k, fv)
		}
	})
	if *n == (vigil.Network{}) {
		e.Network = nil
	}
	if ferr != nil {
		return field, ferr
	}
	return "", nil
}

// field stores one ECS-style field, flattening objects.
func (d *decoder) field(e *vigil.Event, prefix string, k []byte, v *fastjson.Value) (string, error) {
	var name string
	if prefix == "" {
		name = d.intern(k)
	} else {
		name = prefix + string(k)
	}
	if name == "" || len(name) > 256 {
		return clipName(name), errors.New("field name must be 1 to 256 bytes")
	}
	var val any
	switch v.Type() {
	case fastjson.TypeNull:
		return "", nil
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		val = text(b)
	case fastjson.TypeNumber:
		f, err := number(v)
		if err != nil {
			return name, err
		}
		val = f
	case fastjson.TypeTrue:
		val = true
	case fastjson.TypeFalse:
		val = false
	case fastjson.TypeObject:
		o, _ := v.Object()
		var (
			field string
			ferr  error
		)
		o.Visit(func(ck []byte, cv *fastjson.Value) {
			if ferr == nil {
				field, ferr = d.field(e, name+".", ck, cv)
			}
		})
		return field, ferr
	case fastjson.TypeArray:
		items, _ := v.Array()
		list := make([]string, 0, len(items))
		for _, it := range items {
			switch it.Type() {
			case fastjson.TypeString:
				b, _ := it.StringBytes()
				list = append(list, text(b))
			case fastjson.TypeNumber:
				f, err := number(it)
				if err != nil {
					return name, err
				}
				list = append(list, strconv.FormatFloat(f, 'f', -1, 64))
			case fastjson.TypeTrue, fastjson.TypeFalse:
				list = append(list, it.String())
			default:
				return name, errors.New("a list may hold only strings, numbers and booleans")
			}
		}
		val = list
	}
	if e.Fields == nil {
		e.Fields = make(map[string]any, 8)
	}
	e.Fields[name] = val
	return "", nil
}

// validID says whether s is a device id as the agent protocol defines it.
func validID(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == ':' || c == '@') {
			return false
		}
	}
	return true
}

func clipName(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// text returns b as a string, replacing invalid UTF-8.
func text(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

func str(v *fastjson.Value, max int) (string, error) {
	if v.Type() == fastjson.TypeNull {
		return "", nil
	}
	b, err := v.StringBytes()
	if err != nil {
		return "", fmt.Errorf("want a string, have %s", v.Type())
	}
	if len(b) > max {
		return "", fmt.Errorf("longer than %d bytes", max)
	}
	return text(b), nil
}

// strOrFirst reads a string, or the first string of a list (ECS
// event.category is a list).
func strOrFirst(v *fastjson.Value) (string, error) {
	if v.Type() == fastjson.TypeArray {
		items, _ := v.Array()
		if len(items) == 0 {
			return "", nil
		}
		v = items[0]
	}
	return str(v, MaxKindLen)
}

func number(v *fastjson.Value) (float64, error) {
	f, err := v.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%s is not a finite number", clipName(v.String()))
	}
	return f, nil
}

// maxUnix is the last second of year 9999.
const maxUnix = 253402300799

func parseTime(v *fastjson.Value) (time.Time, error) {
	switch v.Type() {
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		var t time.Time
		if err := t.UnmarshalText(b); err != nil {
			return t, fmt.Errorf("cannot parse %q: want an RFC 3339 time", clipName(string(b)))
		}
		return t, nil
	case fastjson.TypeNumber:
		f, err := number(v)
		if err != nil {
			return time.Time{}, err
		}
		if f < 0 || f > maxUnix {
			return time.Time{}, fmt.Errorf("%s is out of range for Unix seconds", v.String())
		}
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("want an RFC 3339 string or Unix seconds, have %s", v.Type())
}

func parseSeverity(v *fastjson.Value) (vigil.Severity, error) {
	switch v.Type() {
	case fastjson.TypeNull:
		return 0, nil
	case fastjson.TypeNumber:
		n, err := v.Int()
		if err != nil || n < 1 || n > 5 {
			return 0, fmt.Errorf("%s: want 1 to 5", clipName(v.String()))
		}
		return vigil.Severity(n), nil
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		if len(b) == 0 {
			return 0, nil
		}
		s, err := vigil.ParseSeverity(string(b))
		if err != nil {
			return 0, fmt.Errorf("unknown severity %q: want informational, low, medium, high or critical", clipName(string(b)))
		}
		return s, nil
	}
	return 0, fmt.Errorf("want a string or a number, have %s", v.Type())
}

func parseIP(v *fastjson.Value, dst *netip.Addr) error {
	s, err := str(v, 64)
	if err != nil || s == "" {
		return err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return fmt.Errorf("cannot parse %q as an IP address", s)
	}
	*dst = a.Unmap()
	return nil
}

func parsePort(v *fastjson.Value, dst *uint16) error {
	if v.Type() == fastjson.TypeNull {
		return nil
	}
	n, err := v.Int()
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%s: want a port number 0 to 65535", clipName(v.String()))
	}
	*dst = uint16(n)
	return nil
}

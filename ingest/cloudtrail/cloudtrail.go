package cloudtrail

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/ingest"
)

// Source is the Event.Source of CloudTrail events.
const Source = "cloudtrail"

// Kind is their Event.Kind (the Sigma mapping routes it to the logsource
// product aws, service cloudtrail).
const Kind = "cloud"

// Limits of one record.
const (
	// MaxFields bounds the flattened fields kept of one record; the rest
	// are dropped and cloudtrail.truncated is set.
	MaxFields = 2048
	// MaxDepth bounds the nesting followed when flattening.
	MaxDepth = 32
	// MaxValue is the longest input value (one record, or one
	// {"Records":[...]} file) a Reader accepts, in bytes.
	MaxValue = 256 << 20
)

// rawObjects are the record's objects also kept whole, as compact JSON,
// under their own name: SigmaHQ rules search them with contains.
var rawObjects = []string{"requestParameters", "responseElements", "additionalEventData", "serviceEventDetails"}

// RecordError is an error in one record of the input: where and what.
type RecordError struct {
	Name  string // the input
	Line  int    // the line the record's value starts on, from 1
	Index int    // the record's index in a Records array, from 0; -1 outside one
	Msg   string
}

func (e *RecordError) Error() string {
	s := e.Name + ":" + strconv.Itoa(e.Line)
	if e.Index >= 0 {
		s += ": Records[" + strconv.Itoa(e.Index) + "]"
	}
	return s + ": " + e.Msg
}

// ParseRecord converts one CloudTrail record (a JSON object, or an
// EventBridge envelope whose detail is one).
func ParseRecord(b []byte) (vigil.Event, error) {
	var rec map[string]any
	if err := json.Unmarshal(b, &rec); err != nil {
		return vigil.Event{}, fmt.Errorf("not a JSON object: %v", err)
	}
	if rec == nil {
		return vigil.Event{}, errors.New("not a JSON object")
	}
	return Convert(unwrap(rec))
}

// unwrap returns the record an EventBridge event carries in its detail.
func unwrap(rec map[string]any) map[string]any {
	if d, ok := rec["detail"].(map[string]any); ok {
		if _, ok := rec["detail-type"]; ok {
			return d
		}
	}
	return rec
}

// Convert returns the event of a decoded record (docs/sources.md lists the
// fields). eventTime, eventSource and eventName are required.
func Convert(rec map[string]any) (vigil.Event, error) {
	str := func(k string) string { s, _ := rec[k].(string); return s }
	ts := str("eventTime")
	if ts == "" {
		return vigil.Event{}, errors.New("eventTime: missing (not a CloudTrail record)")
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil || t.Year() < 1970 || t.Year() > 9999 {
		return vigil.Event{}, fmt.Errorf("eventTime %q: not an RFC 3339 time", ingest.Clip(ts))
	}
	src, name := str("eventSource"), str("eventName")
	if src == "" || name == "" {
		return vigil.Event{}, errors.New("eventSource or eventName: missing (not a CloudTrail record)")
	}
	f := make(map[string]any, 32)
	fl := ingest.Flattener{Fields: f, MaxFields: MaxFields, MaxDepth: MaxDepth}
	fl.Add("", rec)
	if fl.Truncated {
		f["cloudtrail.truncated"] = true
	}
	for _, k := range rawObjects {
		if m, ok := rec[k].(map[string]any); ok {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if enc.Encode(m) == nil {
				f[k] = strings.TrimSuffix(buf.String(), "\n")
			}
		}
	}

	ev := vigil.Event{
		Time:   t.UTC(),
		Source: Source,
		Kind:   Kind,
		Action: ingest.ValidUTF8(name),
		Fields: f,
	}
	if id := str("eventID"); id != "" {
		ev.ID = "cloudtrail-" + ingest.ValidUTF8(id)
	}
	f["cloud.provider"] = "aws"
	f["event.provider"] = ingest.ValidUTF8(src)
	ident, _ := rec["userIdentity"].(map[string]any)
	istr := func(k string) string { s, _ := ident[k].(string); return ingest.ValidUTF8(s) }
	if a := cmp.Or(str("recipientAccountId"), istr("accountId")); a != "" {
		f["cloud.account.id"] = ingest.ValidUTF8(a)
	}
	if r := str("awsRegion"); r != "" {
		f["cloud.region"] = ingest.ValidUTF8(r)
	}
	if u := userName(ident); u != "" {
		f["user.name"] = u
	}
	if id := istr("principalId"); id != "" {
		f["user.id"] = id
	}
	if ua := str("userAgent"); ua != "" {
		f["user_agent.original"] = ingest.ValidUTF8(ua)
	}
	if ip := str("sourceIPAddress"); ip != "" {
		if a, err := netip.ParseAddr(ip); err == nil {
			ev.Network = &vigil.Network{SrcIP: a.Unmap()}
		} else {
			f["source.address"] = ingest.ValidUTF8(ip) // a service: iot.amazonaws.com, AWS Internal
		}
	}
	code := str("errorCode")
	if code != "" {
		f["error.code"] = ingest.ValidUTF8(code)
	}
	if m := str("errorMessage"); m != "" {
		f["error.message"] = ingest.ValidUTF8(m)
	}
	resp, _ := rec["responseElements"].(map[string]any)
	ev.Outcome = "success"
	if cl, _ := resp["ConsoleLogin"].(string); code != "" || cl == "Failure" {
		ev.Outcome = "failure"
	}
	switch {
	case src == "signin.amazonaws.com":
		ev.Category = "authentication"
	case src == "iam.amazonaws.com" || src == "sts.amazonaws.com" || strings.HasPrefix(src, "sso"):
		ev.Category = "iam"
	default:
		ev.Category = "configuration"
	}
	iotDevices(&ev, rec)
	return ev, nil
}

// userName names the identity: its user name, the role and session of an
// assumed role, root, or the last part of its ARN.
func userName(ident map[string]any) string {
	s := func(m map[string]any, k string) string { v, _ := m[k].(string); return ingest.ValidUTF8(v) }
	if u := s(ident, "userName"); u != "" {
		return u
	}
	typ, arn := s(ident, "type"), s(ident, "arn")
	if typ == "Root" {
		return "root"
	}
	if ctx, ok := ident["sessionContext"].(map[string]any); ok {
		if iss, ok := ctx["sessionIssuer"].(map[string]any); ok {
			if u := s(iss, "userName"); u != "" {
				if i := strings.LastIndexByte(arn, '/'); i >= 0 && typ == "AssumedRole" {
					return u + "/" + arn[i+1:] // role/session
				}
				return u
			}
		}
	}
	if i := strings.LastIndexAny(arn, "/:"); i >= 0 && i+1 < len(arn) {
		return arn[i+1:]
	}
	return s(ident, "invokedBy")
}

// iotDevices names the AWS IoT things a record acts on: thingName becomes
// the device id; a job's targets (thing and thing group ARNs) are listed.
func iotDevices(ev *vigil.Event, rec map[string]any) {
	req, _ := rec["requestParameters"].(map[string]any)
	if tn, _ := req["thingName"].(string); tn != "" {
		ev.DeviceID = ingest.ValidUTF8(tn)
	}
	targets, _ := req["targets"].([]any)
	var things, groups []string
	for _, x := range targets {
		arn, _ := x.(string)
		_, res, ok := strings.Cut(arn, ":thing/")
		if ok && res != "" {
			things = append(things, ingest.ValidUTF8(res))
			continue
		}
		if _, res, ok := strings.Cut(arn, ":thinggroup/"); ok && res != "" {
			groups = append(groups, ingest.ValidUTF8(res))
		}
	}
	if len(things) > 0 {
		ev.Fields["aws.iot.things"] = things
		if ev.DeviceID == "" && len(things) == 1 {
			ev.DeviceID = things[0]
		}
	}
	if len(groups) > 0 {
		ev.Fields["aws.iot.thing_groups"] = groups
	}
	if len(targets) > 0 {
		ev.Fields["aws.iot.target_count"] = float64(len(targets))
	}
}

// Stats counts what a Reader read.
type Stats struct {
	Records int // records read (good and bad)
	Bad     int // records that were not converted
}

// Reader reads CloudTrail input: JSON values one after another, each a
// {"Records":[...]} file, an array of records, an EventBridge envelope or
// a record, written on one line (NDJSON) or over several (pretty-printed).
type Reader struct {
	name    string
	br      *bufio.Reader
	line    int // lines read
	start   int // the line the current value started on
	buf     []byte
	lines   bool  // a line held a whole value: the input is NDJSON
	pending []any // records of the last Records array not yet converted
	index   int   // index of pending[0] in its array
	pline   int   // the line of the pending records' value
	st      Stats
}

// NewReader reads r; name names it in errors.
func NewReader(r io.Reader, name string) *Reader {
	return &Reader{name: name, br: bufio.NewReaderSize(r, 64<<10)}
}

// Stats returns the counts so far.
func (r *Reader) Stats() Stats { return r.st }

// Next returns the next event. Errors of one record are *RecordError: the
// caller may go on reading. It returns io.EOF at the end.
func (r *Reader) Next() (vigil.Event, error) {
	for {
		if len(r.pending) > 0 {
			x := r.pending[0]
			r.pending[0] = nil
			r.pending = r.pending[1:]
			i := r.index
			r.index++
			r.st.Records++
			rec, ok := x.(map[string]any)
			if !ok {
				r.st.Bad++
				return vigil.Event{}, &RecordError{Name: r.name, Line: r.pline, Index: i, Msg: "not a JSON object"}
			}
			ev, err := Convert(rec)
			if err != nil {
				r.st.Bad++
				return vigil.Event{}, &RecordError{Name: r.name, Line: r.pline, Index: i, Msg: err.Error()}
			}
			return ev, nil
		}
		val, line, err := r.value()
		if err != nil {
			return vigil.Event{}, err
		}
		var v any
		d := json.NewDecoder(bytes.NewReader(val))
		err = d.Decode(&v)
		if l, ok := v.([]any); ok && err == nil && !d.More() {
			// A JSON array of records.
			r.pending, r.index, r.pline = l, 0, line
			continue
		}
		m, _ := v.(map[string]any)
		if err != nil || m == nil || d.More() {
			r.st.Records++
			r.st.Bad++
			msg := "not a JSON object"
			if err != nil {
				msg += ": " + err.Error()
			}
			return vigil.Event{}, &RecordError{Name: r.name, Line: line, Index: -1, Msg: msg}
		}
		if recs, ok := m["Records"]; ok {
			l, ok := recs.([]any)
			if !ok {
				r.st.Records++
				r.st.Bad++
				return vigil.Event{}, &RecordError{Name: r.name, Line: line, Index: -1, Msg: "Records: not an array"}
			}
			r.pending, r.index, r.pline = l, 0, line
			continue
		}
		r.st.Records++
		ev, err := Convert(unwrap(m))
		if err != nil {
			r.st.Bad++
			return vigil.Event{}, &RecordError{Name: r.name, Line: line, Index: -1, Msg: err.Error()}
		}
		return ev, nil
	}
}

// value returns the next JSON value's bytes and the line it starts on. A
// line that is a whole value is one (NDJSON; once one was seen, every
// line is read alone, so a cut line costs only itself); else lines are added until the brackets opened are closed
// (pretty-printed values). A value that is not valid JSON comes back as it
// is, for Next to report.
func (r *Reader) value() ([]byte, int, error) {
	r.buf = r.buf[:0]
	depth, inStr, esc := 0, false, false
	for {
		l, err := r.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A long line: read it whole.
			long := append([]byte(nil), l...)
			for errors.Is(err, bufio.ErrBufferFull) {
				if len(r.buf)+len(long) > MaxValue {
					return nil, 0, fmt.Errorf("%s:%d: a value longer than %d bytes", r.name, r.line+1, MaxValue)
				}
				l, err = r.br.ReadSlice('\n')
				long = append(long, l...)
			}
			l = long
		}
		if err != nil && err != io.EOF {
			return nil, 0, fmt.Errorf("cannot read %s: %w", r.name, err)
		}
		if len(l) > 0 {
			r.line++
		}
		if t := bytes.TrimSpace(l); len(t) > 0 {
			if len(r.buf) == 0 {
				r.start = r.line
				if json.Valid(t) {
					r.lines = true
					r.buf = append(r.buf, t...)
					return r.buf, r.start, nil
				}
				if r.lines {
					// NDJSON: a line that is no value is a bad one.
					r.buf = append(r.buf, t...)
					return r.buf, r.start, nil
				}
			}
			if len(r.buf)+len(l) > MaxValue {
				return nil, 0, fmt.Errorf("%s:%d: a value longer than %d bytes", r.name, r.start, MaxValue)
			}
			r.buf = append(r.buf, l...)
			for _, c := range l {
				switch {
				case esc:
					esc = false
				case inStr && c == '\\':
					esc = true
				case inStr:
					inStr = c != '"'
				case c == '"':
					inStr = true
				case c == '{' || c == '[':
					depth++
				case c == '}' || c == ']':
					depth--
				}
			}
			if depth <= 0 {
				return r.buf, r.start, nil
			}
		}
		if err == io.EOF {
			if len(r.buf) > 0 {
				return r.buf, r.start, nil
			}
			return nil, 0, io.EOF
		}
	}
}

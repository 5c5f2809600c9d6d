package twin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/vigil-iot/vigil/proto"
)

// Kind is the Event.Kind of twin and shadow updates.
const Kind = "twin"

// Platforms (the twin.platform field).
const (
	PlatformAWS         = "aws_iot_shadow"
	PlatformAzure       = "azure_iot_hub"
	PlatformThingsBoard = "thingsboard"
)

// Sections of a twin document.
const (
	Desired  = "desired"
	Reported = "reported"
)

// Bounds of Flatten.
const (
	// MaxPayload is the most bytes of a document Flatten reads.
	MaxPayload = 32 << 10
	// MaxParams is the most parameters Flatten returns.
	MaxParams = 64
	// MaxDepth is the deepest nesting Flatten follows (the section's own
	// object is depth 1).
	MaxDepth = 8
	// MaxPath is the longest parameter path kept; longer ones are dropped.
	MaxPath = 128
)

// Topic is what an update topic says.
type Topic struct {
	Platform string
	// Thing is the AWS IoT thing name (empty for Azure: the device is the
	// MQTT client id).
	Thing string
	// Shadow is the name of an AWS named shadow ("" for the classic one).
	Shadow string
	// Section is the section an Azure PATCH topic carries (its payload is
	// the section's properties); "" for AWS, whose document names its
	// sections under "state".
	Section string
}

// ParseTopic tells whether topic is a twin or shadow update topic:
//
//	$aws/things/<thing>/shadow/update
//	$aws/things/<thing>/shadow/name/<shadow>/update
//	$iothub/twin/PATCH/properties/desired/...   (the hub to the device)
//	$iothub/twin/PATCH/properties/reported/...  (the device to the hub)
//
// The replies and deltas AWS publishes (update/accepted, update/delta,
// update/documents) repeat an update and are not update topics.
func ParseTopic(topic string) (Topic, bool) {
	if rest, ok := strings.CutPrefix(topic, "$aws/things/"); ok {
		thing, rest, ok := strings.Cut(rest, "/")
		if !ok || thing == "" {
			return Topic{}, false
		}
		switch {
		case rest == "shadow/update":
			return Topic{Platform: PlatformAWS, Thing: thing}, true
		case len(rest) > len("shadow/name/")+len("/update") && strings.HasPrefix(rest, "shadow/name/") && strings.HasSuffix(rest, "/update"):
			name := rest[len("shadow/name/") : len(rest)-len("/update")]
			if name == "" || strings.Contains(name, "/") {
				return Topic{}, false
			}
			return Topic{Platform: PlatformAWS, Thing: thing, Shadow: name}, true
		}
		return Topic{}, false
	}
	if rest, ok := strings.CutPrefix(topic, "$iothub/twin/PATCH/properties/"); ok {
		sec, _, _ := strings.Cut(rest, "/")
		if sec == Desired || sec == Reported {
			return Topic{Platform: PlatformAzure, Section: sec}, true
		}
	}
	return Topic{}, false
}

// Param is one numeric parameter of an update: its section (desired or
// reported) and its dotted path within the section.
type Param struct {
	Section string
	Path    string
	Value   float64
}

// Doc is what Flatten read of a document.
type Doc struct {
	Params []Param
	// Truncated: parameters were dropped (past MaxParams, MaxDepth,
	// MaxPath or MaxPayload), or the document ended early.
	Truncated bool
}

// ErrNotJSON is returned by Flatten for a document that is not a JSON
// object.
var ErrNotJSON = errors.New("not a JSON object")

// Flatten reads the numeric parameters of a twin document. With section
// empty the document is an AWS shadow document, {"state": {"desired":
// {...}, "reported": {...}}} (a document without "state" is read as its
// state); with section set (an Azure PATCH), the document is that
// section's properties. Numbers are kept, as are strings that are
// numbers (ThingsBoard's audit log gives values as strings when section
// is set and strs is true); booleans, other strings, nulls and arrays are
// not parameters. Keys starting with "$" (Azure's $version, $metadata)
// are skipped. A document cut short (a truncated capture) gives the
// parameters before the cut, with Truncated set; a document that does not
// start as a JSON object gives ErrNotJSON.
func Flatten(doc []byte, section string, strs bool) (Doc, error) {
	var out Doc
	if len(doc) > MaxPayload {
		doc, out.Truncated = doc[:MaxPayload], true
	}
	d := json.NewDecoder(bytes.NewReader(doc))
	d.UseNumber()
	tok, err := d.Token()
	if err != nil || tok != json.Delim('{') {
		return out, ErrNotJSON
	}
	w := walker{d: d, out: &out, strs: strs}
	if section != "" {
		w.sec = section
		w.object(nil, 1)
	} else {
		w.shadow()
	}
	if w.err != nil && w.err != errStop {
		out.Truncated = true
	}
	return out, nil
}

var errStop = errors.New("stop")

type walker struct {
	d    *json.Decoder
	out  *Doc
	sec  string
	strs bool
	err  error
}

func (w *walker) token() (json.Token, bool) {
	if w.err != nil {
		return nil, false
	}
	t, err := w.d.Token()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		w.err = err
		return nil, false
	}
	return t, true
}

// shadow reads the members of an AWS shadow document (after its "{").
func (w *walker) shadow() {
	top := true
	for {
		t, ok := w.token()
		if !ok || t == json.Delim('}') {
			return
		}
		k, _ := t.(string)
		switch {
		case top && k == "state":
			// {"state": {...}}: the sections are in it.
			if t, ok := w.token(); !ok || t != json.Delim('{') {
				w.skipRest(t)
				continue
			}
			w.sections()
		case k == Desired || k == Reported:
			if t, ok := w.token(); ok && t == json.Delim('{') {
				w.sec = k
				w.object(nil, 1)
			} else {
				w.skipRest(t)
			}
		default:
			t, _ := w.token()
			w.skipRest(t)
		}
	}
}

// sections reads the members of a state object (after its "{").
func (w *walker) sections() {
	for {
		t, ok := w.token()
		if !ok || t == json.Delim('}') {
			return
		}
		k, _ := t.(string)
		v, ok := w.token()
		if !ok {
			return
		}
		if (k == Desired || k == Reported) && v == json.Delim('{') {
			w.sec = k
			w.object(nil, 1)
			continue
		}
		w.skipRest(v)
	}
}

// skipRest skips the rest of a value whose first token was t.
func (w *walker) skipRest(t json.Token) {
	if t != json.Delim('{') && t != json.Delim('[') {
		return
	}
	depth := 1
	for depth > 0 {
		t, ok := w.token()
		if !ok {
			return
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
}

// object reads the members of an object (after its "{") at depth, path
// the names that lead to it.
func (w *walker) object(path []string, depth int) {
	for {
		t, ok := w.token()
		if !ok || t == json.Delim('}') {
			return
		}
		k, _ := t.(string)
		v, ok := w.token()
		if !ok {
			return
		}
		if strings.HasPrefix(k, "$") || k == "" {
			w.skipRest(v)
			continue
		}
		switch x := v.(type) {
		case json.Delim:
			if x == '{' && depth < MaxDepth {
				w.object(append(path, k), depth+1)
				continue
			}
			if x == '{' {
				w.out.Truncated = true
			}
			w.skipRest(v)
		case json.Number:
			f, err := x.Float64()
			if err == nil {
				w.add(path, k, f)
			}
		case string:
			if w.strs {
				if f, ok := number(x); ok {
					w.add(path, k, f)
				}
			}
		}
	}
}

// number parses a string that is a JSON-style decimal number.
func number(s string) (float64, bool) {
	if s == "" || len(s) > 64 {
		return 0, false
	}
	var n json.Number
	if err := json.Unmarshal([]byte(s), &n); err != nil {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}

func (w *walker) add(path []string, k string, f float64) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return
	}
	if len(w.out.Params) >= MaxParams {
		w.out.Truncated = true
		w.err = errStop
		return
	}
	n := len(k) + len(path)
	for _, p := range path {
		n += len(p)
	}
	if n > MaxPath {
		w.out.Truncated = true
		return
	}
	var b strings.Builder
	b.Grow(n)
	for _, p := range path {
		b.WriteString(p)
		b.WriteByte('.')
	}
	b.WriteString(k)
	s := b.String()
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	w.out.Params = append(w.out.Params, Param{Section: w.sec, Path: s, Value: f})
}

// FieldPrefix is the prefix of the event fields of a section's parameters:
// twin.desired.<path> and twin.reported.<path>.
func FieldPrefix(section string) string { return "twin." + section + "." }

// SetFields reads an update document and sets the twin fields of its
// event on f: twin.platform, twin.thing, twin.shadow, the parameters
// (twin.desired.<path>, twin.reported.<path>), twin.sections, twin.params,
// twin.truncated and twin.error. thing is the device when the topic does
// not name it (Azure: the MQTT client id of the connection; "" when not
// known). complete is false when doc is a prefix of the document (a
// capture or a log that cut it). It returns the device id of the event:
// the thing, or "".
func SetFields(f *proto.Fields, tp Topic, thing string, doc []byte, complete bool) string {
	f.SetStr("twin.platform", tp.Platform)
	if tp.Thing != "" {
		thing = tp.Thing
	}
	if thing != "" {
		thing = clip(thing, 256)
		f.SetStr("twin.thing", thing)
	}
	if tp.Shadow != "" {
		f.SetStr("twin.shadow", clip(tp.Shadow, 256))
	}
	d, err := Flatten(doc, tp.Section, false)
	if err != nil {
		f.SetStr("twin.error", err.Error())
	}
	f.Set("twin.truncated", d.Truncated || (err == nil && !complete))
	f.Set("twin.params", proto.Num(float64(len(d.Params))))
	var secs []string
	for _, p := range d.Params {
		f.Set(FieldPrefix(p.Section)+p.Path, p.Value)
		if !slices.Contains(secs, p.Section) {
			secs = append(secs, p.Section)
		}
	}
	if len(secs) > 0 {
		f.Set("twin.sections", secs)
	}
	return thing
}

// clip cuts s to n bytes and makes it valid UTF-8.
func clip(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

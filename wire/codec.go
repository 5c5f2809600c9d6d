package wire

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"strconv"
	"strings"
	"time"
)

// Format is an encoding of a report.
type Format string

// Formats.
const (
	FormatJSON Format = "json"
	FormatXML  Format = "xml"
)

// Content types of the two formats.
const (
	ContentTypeJSON = "application/json"
	ContentTypeXML  = "application/xml"
)

// ErrUnsupportedType is returned for a content type that is neither JSON
// nor XML.
var ErrUnsupportedType = errors.New("unsupported content type: want application/json or application/xml")

// ErrTooLarge is returned when a body is longer than its limit.
var ErrTooLarge = errors.New("body is larger than the limit")

// ErrDoctype is returned for XML that holds a DOCTYPE or an entity
// declaration; reports never need one, and refusing them rules out entity
// expansion attacks.
var ErrDoctype = errors.New("DOCTYPE and ENTITY declarations are not allowed")

// ParseContentType returns the format of a Content-Type header value:
// application/json (and any +json type) is JSON, application/xml and
// text/xml (and any +xml type) are XML. A charset other than UTF-8 is
// refused.
func ParseContentType(contentType string) (Format, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", fmt.Errorf("%w: %q", ErrUnsupportedType, contentType)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return "", fmt.Errorf("%w: charset %q (only utf-8)", ErrUnsupportedType, cs)
	}
	switch {
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		return FormatJSON, nil
	case mt == "application/xml" || mt == "text/xml" || strings.HasSuffix(mt, "+xml"):
		return FormatXML, nil
	}
	return "", fmt.Errorf("%w: %q", ErrUnsupportedType, mt)
}

// DecodeError says why a body could not be read as a report, and where.
type DecodeError struct {
	Format Format
	// Path is the field, as in validation problems ("health.cpu_pct",
	// "events[3].time"), when known.
	Path string
	// Line is the line of an XML error, 0 when unknown.
	Line int
	// Offset is the byte offset of a JSON error, -1 when unknown.
	Offset int64
	Err    error
}

// Error describes the failure and its place.
func (e *DecodeError) Error() string {
	var b strings.Builder
	b.WriteString("cannot decode ")
	b.WriteString(strings.ToUpper(string(e.Format)))
	b.WriteString(" report: ")
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	} else if e.Offset >= 0 {
		fmt.Fprintf(&b, "offset %d: ", e.Offset)
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

// Unwrap returns the cause.
func (e *DecodeError) Unwrap() error { return e.Err }

// DecodeReport reads one report of the content type from r, reading at
// most maxBytes (0 means no limit). It returns ErrUnsupportedType (wrapped)
// for another content type, ErrTooLarge (wrapped) for a longer body, and a
// *DecodeError when the body is not a report of a version this package
// reads. It does not validate the values: see Report.Filter.
func DecodeReport(contentType string, r io.Reader, maxBytes int64) (*Report, error) {
	f, err := ParseContentType(contentType)
	if err != nil {
		return nil, err
	}
	data, err := ReadLimited(r, maxBytes)
	if err != nil {
		return nil, err
	}
	return DecodeReportBytes(f, data)
}

// ReadLimited reads all of r, failing with ErrTooLarge (wrapped) after
// maxBytes; 0 means no limit.
func ReadLimited(r io.Reader, maxBytes int64) ([]byte, error) {
	if maxBytes <= 0 {
		return io.ReadAll(r)
	}
	data, err := io.ReadAll(io.LimitReader(r, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read body: %w", err)
	}
	if int64(len(data)) > maxBytes {
		return nil, fmt.Errorf("%w of %d bytes", ErrTooLarge, maxBytes)
	}
	return data, nil
}

// DecodeReportBytes reads one report in the format from data.
func DecodeReportBytes(f Format, data []byte) (*Report, error) {
	var (
		r   *Report
		err error
	)
	switch f {
	case FormatJSON:
		r, err = decodeJSON(data)
	case FormatXML:
		r, err = decodeXML(data)
	default:
		return nil, fmt.Errorf("%w: format %q", ErrUnsupportedType, f)
	}
	if err != nil {
		return nil, err
	}
	if r.Version != Version {
		msg := fmt.Errorf("unsupported version %q: this server reads version %s", r.Version, Version)
		if r.Version == "" {
			msg = errors.New("missing")
		}
		return nil, &DecodeError{Format: f, Path: "version", Offset: -1, Err: msg}
	}
	return r, nil
}

// EncodeReport writes r in the format of the content type. An empty
// Version is written as Version.
func EncodeReport(w io.Writer, contentType string, r *Report) error {
	f, err := ParseContentType(contentType)
	if err != nil {
		return err
	}
	return EncodeReportFormat(w, f, r)
}

// EncodeReportFormat writes r in format f (FormatJSON or FormatXML). The
// agent uses it: it knows its format, and it does not link package mime.
func EncodeReportFormat(w io.Writer, f Format, r *Report) error {
	if r.Version == "" {
		c := *r
		c.Version = Version
		r = &c
	}
	switch f {
	case FormatJSON:
		if err := json.NewEncoder(w).Encode(r); err != nil {
			return fmt.Errorf("cannot encode JSON report: %w", err)
		}
	case FormatXML:
		if _, err := io.WriteString(w, xml.Header); err != nil {
			return fmt.Errorf("cannot encode XML report: %w", err)
		}
		if err := xml.NewEncoder(w).Encode(r); err != nil {
			return fmt.Errorf("cannot encode XML report: %w", err)
		}
		if _, err := io.WriteString(w, "\n"); err != nil {
			return fmt.Errorf("cannot encode XML report: %w", err)
		}
	default:
		return fmt.Errorf("%w: format %q", ErrUnsupportedType, f)
	}
	return nil
}

func decodeJSON(data []byte) (*Report, error) {
	// Fast path: Report and SecurityEvent have no JSON methods, so one
	// pass of encoding/json reads a good report.
	var r Report
	err := json.Unmarshal(data, &r)
	if err == nil {
		return &r, nil
	}
	// Slow path, for the error only: decode again piece by piece to name
	// the field at fault (encoding/json does not name it for a bad time,
	// nor give the index of a bad event).
	return nil, jsonError(decodeJSONSlow(data, err))
}

// jsonError turns an encoding/json error into a *DecodeError.
func jsonError(err error) *DecodeError {
	var (
		de  *DecodeError
		se  *json.SyntaxError
		ute *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &de):
		de.Format = FormatJSON
		return de
	case errors.As(err, &se):
		return &DecodeError{Format: FormatJSON, Offset: se.Offset, Err: errors.New(strings.TrimPrefix(se.Error(), "json: "))}
	case errors.As(err, &ute):
		// The shadow structs of decodeJSONSlow embed Report and SecurityEvent.
		path := strings.TrimPrefix(strings.TrimPrefix(ute.Field, "Report."), "SecurityEvent.")
		return &DecodeError{Format: FormatJSON, Path: path, Offset: ute.Offset,
			Err: fmt.Errorf("cannot use a JSON %s as %s", ute.Value, kindName(ute.Type.Kind().String()))}
	}
	return &DecodeError{Format: FormatJSON, Offset: -1, Err: err}
}

func kindName(k string) string {
	switch {
	case strings.HasPrefix(k, "float"):
		return "a number"
	case strings.HasPrefix(k, "uint"):
		return "a whole number ≥ 0"
	case strings.HasPrefix(k, "int"):
		return "a whole number"
	case k == "string":
		return "a string"
	case k == "slice":
		return "a list"
	case k == "struct" || k == "map":
		return "an object"
	case k == "ptr":
		return "a number"
	}
	return k
}

// prefixed prepends a path to the path of a decode error.
func prefixed(path string, err error) error {
	de := jsonError(err)
	if de.Path != "" {
		path += "." + de.Path
	}
	// An offset inside a nested value is relative to that value: drop it.
	return &DecodeError{Format: FormatJSON, Path: path, Offset: -1, Err: de.Err}
}

// jsonReport and jsonEvent shadow the times and events of a report so
// that decodeJSONSlow can read them one at a time.
type jsonReport struct {
	Report
	Time   json.RawMessage   `json:"time"`
	Events []json.RawMessage `json:"events"`
}

type jsonEvent struct {
	SecurityEvent
	Time json.RawMessage `json:"time"`
}

// decodeJSONSlow decodes data and returns the first error with the path
// of its field, or fastErr when it finds none.
func decodeJSONSlow(data []byte, fastErr error) error {
	var aux jsonReport
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	if _, err := parseJSONTime(aux.Time); err != nil {
		return &DecodeError{Path: "time", Offset: -1, Err: err}
	}
	for i, raw := range aux.Events {
		var ev jsonEvent
		err := json.Unmarshal(raw, &ev)
		if err == nil {
			if _, terr := parseJSONTime(ev.Time); terr != nil {
				err = &DecodeError{Path: "time", Offset: -1, Err: terr}
			}
		}
		if err != nil {
			return prefixed("events["+strconv.Itoa(i)+"]", err)
		}
	}
	return fastErr
}

// parseJSONTime reads an RFC 3339 time; absent or null is the zero time.
func parseJSONTime(raw json.RawMessage) (time.Time, error) {
	var t time.Time
	if len(raw) == 0 || string(raw) == "null" {
		return t, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return t, fmt.Errorf("want an RFC 3339 time string, have %s", clip(string(raw)))
	}
	if err := t.UnmarshalText([]byte(s)); err != nil {
		return t, fmt.Errorf("cannot parse %q as an RFC 3339 time", clip(s))
	}
	return t, nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

func decodeXML(data []byte) (*Report, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	g := &xmlGuard{d: d}
	outer := xml.NewTokenDecoder(g)
	var r Report
	if err := outer.Decode(&r); err != nil {
		return nil, g.decodeError(err)
	}
	// Only comments, processing instructions and space may follow the
	// root element.
	for {
		tok, err := outer.Token()
		if err == io.EOF {
			break
		} else if err != nil {
			return nil, g.decodeError(err)
		}
		if cd, ok := tok.(xml.CharData); ok && len(bytes.TrimSpace(cd)) > 0 {
			return nil, g.decodeError(errors.New("unexpected text after </report>"))
		}
		if _, ok := tok.(xml.StartElement); ok {
			return nil, g.decodeError(errors.New("unexpected element after </report>"))
		}
	}
	return &r, nil
}

// xmlGuard passes the raw tokens of an XML decoder through, refusing
// directives (DOCTYPE, ENTITY) and keeping the stack of open elements so
// that errors can name the field.
type xmlGuard struct {
	d     *xml.Decoder
	stack []xmlFrame
	// lastLen is the depth of the element last started or ended:
	// stack[:lastLen] (which may reach past len(stack) into the backing
	// array just after an end) is its path.
	lastLen int
}

type xmlFrame struct {
	name  string
	index int // position among its list's items, -1 when not a list item
	items int // items seen so far, when this is a list
}

// listItems maps the elements of a list to their list element.
var listItems = map[string]string{
	"event": "events", "component": "software", "interface": "interfaces",
	"listener": "listening", "address": "addresses", "metric": "metrics", "field": "fields",
}

// Token returns the next raw token, or an error for a directive.
func (g *xmlGuard) Token() (xml.Token, error) {
	tok, err := g.d.RawToken()
	if err != nil {
		return tok, err
	}
	switch t := tok.(type) {
	case xml.Directive:
		return nil, ErrDoctype
	case xml.StartElement:
		f := xmlFrame{name: t.Name.Local, index: -1}
		if n := len(g.stack); n > 0 {
			if parent := &g.stack[n-1]; listItems[f.name] == parent.name {
				f.index = parent.items
				parent.items++
			}
		}
		g.stack = append(g.stack, f)
		g.lastLen = len(g.stack)
	case xml.EndElement:
		if n := len(g.stack); n > 0 {
			g.lastLen = n
			g.stack = g.stack[:n-1]
		}
	}
	return tok, nil
}

// lastPath returns the path of the element last started or ended, in
// JSON names ("events[1].time"); the root element is left out.
func (g *xmlGuard) lastPath() string {
	if g.lastLen > cap(g.stack) {
		return ""
	}
	var b strings.Builder
	for i, f := range g.stack[:g.lastLen] {
		switch {
		case i == 0:
		case f.index >= 0:
			b.WriteString("[" + strconv.Itoa(f.index) + "]")
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(f.name)
		}
	}
	return b.String()
}

func (g *xmlGuard) decodeError(err error) *DecodeError {
	line, _ := g.d.InputPos()
	de := &DecodeError{Format: FormatXML, Line: line, Offset: -1, Err: err}
	var (
		se *xml.SyntaxError
		ne *strconv.NumError
		te *time.ParseError
	)
	switch {
	case errors.Is(err, ErrDoctype):
	case errors.As(err, &se):
		de.Line, de.Err = se.Line, errors.New(se.Msg)
	case errors.As(err, &ne):
		de.Path = g.lastPath()
		if errors.Is(ne.Err, strconv.ErrRange) {
			de.Err = fmt.Errorf("%q is out of range", clip(ne.Num))
		} else {
			de.Err = fmt.Errorf("cannot parse %q as a number", clip(ne.Num))
		}
	case errors.As(err, &te):
		de.Path = g.lastPath()
		de.Err = fmt.Errorf("cannot parse %q as an RFC 3339 time", clip(te.Value))
	default:
		de.Path = g.lastPath()
		if strings.HasPrefix(err.Error(), "expected element type") {
			de.Path = ""
		}
	}
	return de
}

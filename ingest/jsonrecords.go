package ingest

import (
	"encoding/json"
	"io"
	"strconv"

	"github.com/vigil-iot/vigil"
)

// RecordError is an error in one record of a JSON log input.
type RecordError struct {
	Name  string // the input
	Value int    // the JSON value of the input, from 1
	Index int    // the record's index in its list, from 0; -1 outside one
	List  string // how the error names the list ("records"; "" for a bare array)
	Msg   string
}

func (e *RecordError) Error() string {
	s := e.Name + ": value " + strconv.Itoa(e.Value)
	if e.Index >= 0 {
		s += ": " + e.List + "[" + strconv.Itoa(e.Index) + "]"
	}
	return s + ": " + e.Msg
}

// RecordStats counts what a JSONRecords read.
type RecordStats struct {
	Records int // records read (good and bad)
	Bad     int // records that were not converted
}

// JSONRecords reads the records of a cloud log: JSON values one after
// another (on one line or several), each a record or a list of records.
// JSON that does not parse ends the input (the error says where); a
// record that does not convert is a *RecordError and the reading goes on.
type JSONRecords struct {
	name    string
	list    func(v any) (records []any, name string, ok bool)
	convert func(rec map[string]any) (vigil.Event, error)
	d       *json.Decoder
	value   int
	pending []any
	listAs  string
	index   int
	done    bool
	st      RecordStats
}

// NewJSONRecords reads r, name naming it in errors. list returns the
// records a value holds and how errors name that list, ok false when the
// value is one record; convert makes one record an event.
func NewJSONRecords(r io.Reader, name string, list func(v any) ([]any, string, bool), convert func(map[string]any) (vigil.Event, error)) *JSONRecords {
	return &JSONRecords{name: name, list: list, convert: convert, d: json.NewDecoder(r)}
}

// Stats returns the counts so far.
func (r *JSONRecords) Stats() RecordStats { return r.st }

// Next returns the next event, or io.EOF at the end.
func (r *JSONRecords) Next() (vigil.Event, error) {
	for {
		if len(r.pending) > 0 {
			x := r.pending[0]
			r.pending[0] = nil
			r.pending = r.pending[1:]
			i := r.index
			r.index++
			return r.record(x, i)
		}
		if r.done {
			return vigil.Event{}, io.EOF
		}
		var v any
		if err := r.d.Decode(&v); err != nil {
			r.done = true
			if err == io.EOF {
				return vigil.Event{}, io.EOF
			}
			r.st.Records++
			r.st.Bad++
			return vigil.Event{}, &RecordError{Name: r.name, Value: r.value + 1, Index: -1, Msg: "not JSON (the rest of the input is skipped): " + err.Error()}
		}
		r.value++
		if l, as, ok := r.list(v); ok {
			r.pending, r.listAs, r.index = l, as, 0
			continue
		}
		return r.record(v, -1)
	}
}

func (r *JSONRecords) record(x any, i int) (vigil.Event, error) {
	r.st.Records++
	bad := func(msg string) (vigil.Event, error) {
		r.st.Bad++
		return vigil.Event{}, &RecordError{Name: r.name, Value: r.value, Index: i, List: r.listAs, Msg: msg}
	}
	rec, ok := x.(map[string]any)
	if !ok {
		return bad("not a JSON object")
	}
	ev, err := r.convert(rec)
	if err != nil {
		return bad(err.Error())
	}
	return ev, nil
}

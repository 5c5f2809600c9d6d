package hunt

import (
	"encoding/json"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/valyala/fastjson"

	"github.com/vigil-iot/vigil"
)

// FuzzParse: any input parses or fails with a position inside the query,
// never panics; what parses evaluates on an event without panicking.
func FuzzParse(f *testing.F) {
	for _, q := range append(queries,
		`process.command_line="*curl*" source.ip=10.0.0.0/8 NOT user.name=root | stats count by device.id | sort -count | head 10`,
		`| regex process.command_line="wget\s+http" | bin _time span=1h | stats count, dc(user.name) as users by _time, device.id`,
		`kind=auth | top limit=5 user.name by device.id`, `(a=1 OR (b=2 AND NOT c=3)) | table a b`,
		`a="x\"y" | sort 5 - count`, `earliest=-7d latest=now`, `x<"é"`, `* | stats count`) {
		f.Add(q)
	}
	ev := &vigil.Event{ID: "x", Time: time.Unix(0, 0), DeviceID: "d", Kind: "auth", Fields: map[string]any{"a": "1", "b": float64(2), "c": []string{"3"}}}
	f.Fuzz(func(t *testing.T, q string) {
		p, err := Parse(q, time.Unix(1e9, 0))
		if err != nil {
			se, ok := err.(*SyntaxError)
			if !ok {
				t.Fatalf("%q: error %T %v is not a SyntaxError", q, err, err)
			}
			if se.Pos < 0 || se.Pos > len(q) {
				t.Fatalf("%q: position %d outside the query", q, se.Pos)
			}
			return
		}
		Matches(p.Search, ev)
	})
}

// FuzzDecodeColumn: a stored column or segment header that is corrupt is
// an error, never a panic or an index out of its dictionary.
func FuzzDecodeColumn(f *testing.F) {
	evs := genEvents(200, 11)
	b := newBuilder()
	for i := range evs {
		b.add(int64(i+1), &evs[i])
	}
	st := b.finish().encode()
	for _, c := range st.Columns {
		f.Add(c, 200)
	}
	f.Add(st.Meta, -1) // version 2, with rows marked inexact
	v1 := (&segment{seqs: []int64{1, 2, 5}, times: []int64{10, 10, 7}}).encode().Meta
	v1 = v1[:len(v1)-1]
	v1[0] = 1
	f.Add(v1, -1)
	f.Fuzz(func(t *testing.T, data []byte, rows int) {
		if rows < 0 {
			seqs, _, inexact, _, err := decodeMetaRows(data)
			for i, r := range inexact {
				if err == nil && (r >= len(seqs) || (i > 0 && r <= inexact[i-1])) {
					t.Fatalf("inexact rows %v of %d", inexact, len(seqs))
				}
			}
			return
		}
		c, err := decodeColumn(data, rows%100000)
		if err != nil {
			return
		}
		for i := range c.ids {
			c.value(i)
			c.display(c.ids[i])
		}
	})
}

// FuzzStoredJSON: reading a stored event (decodeEvent, and into a
// segment, addJSON) fails cleanly on anything, never panics; what both
// encoding/json and decodeEvent read as an event has the same id, time
// and device.
func FuzzStoredJSON(f *testing.F) {
	for _, e := range genEvents(20, 3) {
		b, _ := e.AppendJSON(nil, false)
		f.Add(b)
	}
	f.Add([]byte(`{"id":"x","time":"2026-01-01T00:00:00Z","kind":"k","severity":"high","network":{"src_ip":"::1","src_port":7},"fields":{"a":[1,"b",null],"o":{"x":1}}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var p fastjson.Parser
		got, err := decodeEvent(&p, body)
		b := newBuilder()
		if b.addJSON(&p, 1, body) == nil {
			b.finish().encode()
		}
		if err != nil || !utf8.Valid(body) {
			return // stored events are valid UTF-8 (vigil.Event.AppendJSON)
		}
		var want vigil.Event
		if json.Unmarshal(body, &want) != nil {
			return
		}
		if got.ID != want.ID || !got.Time.Equal(want.Time) || got.DeviceID != want.DeviceID {
			t.Fatalf("%s: decodeEvent %q %v %q, encoding/json %q %v %q", body, got.ID, got.Time, got.DeviceID, want.ID, want.Time, want.DeviceID)
		}
	})
}

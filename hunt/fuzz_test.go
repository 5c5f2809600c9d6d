package hunt

import (
	"testing"
	"time"

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
	f.Add(st.Meta, -1)
	f.Fuzz(func(t *testing.T, data []byte, rows int) {
		if rows < 0 {
			decodeMeta(data)
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

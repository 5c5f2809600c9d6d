package hunt

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"

	"github.com/valyala/fastjson"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// addJSON appends one event from its stored JSON (vigil.Event's
// encoding), as add would from the decoded event, without decoding it
// into a vigil.Event: sealing 10 million events is dominated by that.
// The fields are those vigil.Event.Field gives, with its rules: the
// event's own members first, the 5-tuple before a field of the same name.
func (b *builder) addJSON(p *fastjson.Parser, seq int64, body []byte) error {
	v, err := p.ParseBytes(body)
	if err != nil {
		return fmt.Errorf("cannot read stored event %d: %w", seq, err)
	}
	o, err := v.Object()
	if err != nil {
		return fmt.Errorf("cannot read stored event %d: %w", seq, err)
	}
	ts := o.Get("time")
	if ts == nil || ts.Type() != fastjson.TypeString {
		return fmt.Errorf("cannot read stored event %d: no time", seq)
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts.GetStringBytes()))
	if err != nil {
		return fmt.Errorf("cannot read stored event %d: %w", seq, err)
	}
	b.seg.seqs = append(b.seg.seqs, seq)
	b.seg.times = append(b.seg.times, t.UnixNano())
	// A row is rebuilt from the columns (a retro-hunt reads them) only
	// when that gives the event decodeEvent gives (but Received); the
	// others are marked and read from the row store.
	if t.Location() != time.UTC {
		b.lossy = true
	}
	str := func(key, field string) {
		if x := o.Get(key); x != nil && x.Type() == fastjson.TypeString {
			if s := x.GetStringBytes(); len(s) > 0 {
				b.setText(field, kString, string(s))
			}
		}
	}
	str("id", "event.id")
	str("device_id", "device.id")
	str("source", "event.source")
	str("provenance", "event.provenance")
	str("kind", "event.kind")
	str("category", "event.category")
	str("action", "event.action")
	str("outcome", "event.outcome")
	if x := o.Get("severity"); x != nil && x.Type() != fastjson.TypeString && x.Type() != fastjson.TypeNull {
		b.lossy = true
	} else if x != nil && x.Type() == fastjson.TypeString {
		if sev, err := vigil.ParseSeverity(string(x.GetStringBytes())); err == nil && sev != 0 {
			b.setText("event.severity", kNumber, strconv.Itoa(int(sev)))
		}
	}
	var netSet [5]bool // transport, source.ip, source.port, destination.ip, destination.port
	if n := o.Get("network"); n != nil && n.Type() == fastjson.TypeObject {
		no, _ := n.Object()
		netStr := func(key, field string, i int) {
			if x := no.Get(key); x != nil && x.Type() == fastjson.TypeString && len(x.GetStringBytes()) > 0 {
				b.setText(field, kString, string(x.GetStringBytes()))
				netSet[i] = true
			}
		}
		netNum := func(key, field string, i int) {
			if x := no.Get(key); x != nil && x.Type() == fastjson.TypeNumber {
				if f, err := x.Float64(); err == nil && f != 0 {
					b.setText(field, kNumber, vigil.ValueString(f))
					netSet[i] = true
				}
			}
		}
		netStr("transport", "network.transport", 0)
		netStr("src_ip", "source.ip", 1)
		netNum("src_port", "source.port", 2)
		netStr("dst_ip", "destination.ip", 3)
		netNum("dst_port", "destination.port", 4)
		set := 0
		for _, ok := range netSet {
			if ok {
				set++
			}
		}
		if set == 0 || set != no.Len() {
			b.lossy = true // an empty network, or members not rebuilt
		}
	} else if n != nil && n.Type() != fastjson.TypeNull {
		b.lossy = true
	}
	if f := o.Get("fields"); f != nil && f.Type() == fastjson.TypeObject {
		fo, _ := f.Object()
		fo.Visit(func(key []byte, x *fastjson.Value) {
			k := string(key)
			if isFixed(k) {
				// As vigil.Event.Field: a field of a 5-tuple name counts
				// only when the 5-tuple lacks it; the other fixed names
				// are the event's own members.
				i := -1
				switch k {
				case "network.transport":
					i = 0
				case "source.ip":
					i = 1
				case "source.port":
					i = 2
				case "destination.ip":
					i = 3
				case "destination.port":
					i = 4
				}
				b.lossy = true // which of the two it was is not kept
				if i < 0 || netSet[i] {
					return
				}
			}
			if !exactJSON(x) {
				b.lossy = true
			}
			kind, text := jsonValue(x)
			b.setText(canonical(k), kind, text)
		})
	}
	b.endRow()
	return nil
}

// exactJSON says whether a field value is rebuilt as decodeEvent gives
// it from its column: strings, numbers, booleans, lists of strings.
func exactJSON(x *fastjson.Value) bool {
	switch x.Type() {
	case fastjson.TypeString, fastjson.TypeTrue, fastjson.TypeFalse:
		return true
	case fastjson.TypeNumber:
		_, err := x.Float64()
		return err == nil
	case fastjson.TypeArray:
		arr, _ := x.Array()
		for _, e := range arr {
			if e.Type() != fastjson.TypeString {
				return false
			}
		}
		return true
	}
	return false
}

// jsonValue is valueOf for a value as encoding/json would decode it (and
// store.NormalizeFields normalize it).
func jsonValue(x *fastjson.Value) (byte, string) {
	switch x.Type() {
	case fastjson.TypeString:
		return kString, string(x.GetStringBytes())
	case fastjson.TypeNumber:
		f, _ := x.Float64()
		return kNumber, vigil.ValueString(f)
	case fastjson.TypeTrue:
		return kBool, "true"
	case fastjson.TypeFalse:
		return kBool, "false"
	case fastjson.TypeArray:
		arr, _ := x.Array()
		l := make([]any, len(arr))
		for i, e := range arr {
			switch e.Type() {
			case fastjson.TypeString:
				l[i] = string(e.GetStringBytes())
			case fastjson.TypeNumber:
				l[i], _ = e.Float64()
			case fastjson.TypeTrue:
				l[i] = true
			case fastjson.TypeFalse:
				l[i] = false
			}
		}
		return valueOf(l)
	}
	return kString, "" // null, objects: as vigil.ValueString gives them
}

// decodeEvent decodes a stored event as encoding/json (with
// store.NormalizeFields) would, several times faster: a retro-hunt
// decodes every event a rule may use.
func decodeEvent(p *fastjson.Parser, body []byte) (vigil.Event, error) {
	var e vigil.Event
	v, err := p.ParseBytes(body)
	if err != nil {
		return e, err
	}
	o, err := v.Object()
	if err != nil {
		return e, err
	}
	var ferr error
	str := func(x *fastjson.Value) string {
		if x.Type() != fastjson.TypeString {
			ferr = fmt.Errorf("a string member is %s", x.Type())
			return ""
		}
		return string(x.GetStringBytes())
	}
	tm := func(x *fastjson.Value) time.Time {
		t, err := time.Parse(time.RFC3339Nano, str(x))
		if err != nil && ferr == nil {
			ferr = err
		}
		return t
	}
	o.Visit(func(key []byte, x *fastjson.Value) {
		if x.Type() == fastjson.TypeNull {
			return
		}
		switch string(key) {
		case "id":
			e.ID = str(x)
		case "time":
			e.Time = tm(x)
		case "received":
			e.Received = tm(x)
		case "device_id":
			e.DeviceID = str(x)
		case "source":
			e.Source = str(x)
		case "provenance":
			e.Provenance = str(x)
		case "kind":
			e.Kind = str(x)
		case "category":
			e.Category = str(x)
		case "action":
			e.Action = str(x)
		case "outcome":
			e.Outcome = str(x)
		case "severity":
			var b []byte
			if x.Type() == fastjson.TypeString {
				b = x.GetStringBytes()
			} else {
				b = x.MarshalTo(nil)
			}
			if err := e.Severity.UnmarshalText(b); err != nil && ferr == nil {
				ferr = err
			}
		case "network":
			no, err := x.Object()
			if err != nil {
				ferr = err
				return
			}
			n := &vigil.Network{}
			no.Visit(func(k []byte, y *fastjson.Value) {
				switch string(k) {
				case "transport":
					n.Transport = str(y)
				case "src_ip", "dst_ip":
					a, err := netip.ParseAddr(str(y))
					if err != nil && ferr == nil {
						ferr = err
					}
					if k[0] == 's' {
						n.SrcIP = a
					} else {
						n.DstIP = a
					}
				case "src_port", "dst_port":
					u, err := y.Uint()
					if (err != nil || u > 65535) && ferr == nil {
						ferr = fmt.Errorf("bad port %s", y)
					}
					if k[0] == 's' {
						n.SrcPort = uint16(u)
					} else {
						n.DstPort = uint16(u)
					}
				}
			})
			e.Network = n
		case "fields":
			fo, err := x.Object()
			if err != nil {
				ferr = err
				return
			}
			e.Fields = make(map[string]any, fo.Len())
			fo.Visit(func(k []byte, y *fastjson.Value) { e.Fields[string(k)] = anyValue(y) })
			store.NormalizeFields(e.Fields)
		}
	})
	return e, ferr
}

// anyValue is a JSON value as encoding/json decodes it into an any.
func anyValue(x *fastjson.Value) any {
	switch x.Type() {
	case fastjson.TypeString:
		return string(x.GetStringBytes())
	case fastjson.TypeNumber:
		f, _ := x.Float64()
		return f
	case fastjson.TypeTrue:
		return true
	case fastjson.TypeFalse:
		return false
	case fastjson.TypeArray:
		arr, _ := x.Array()
		l := make([]any, len(arr))
		for i, e := range arr {
			l[i] = anyValue(e)
		}
		return l
	case fastjson.TypeObject:
		o, _ := x.Object()
		m := make(map[string]any, o.Len())
		o.Visit(func(k []byte, y *fastjson.Value) { m[string(k)] = anyValue(y) })
		return m
	}
	return nil
}

package websocket

import (
	"testing"
	"time"

	vigil "github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/proto"
	"github.com/vigil-iot/vigil/proto/mqtt"
)

type sink []vigil.Event

func (s *sink) Emit(ev proto.Event) { *s = append(*s, ev.Vigil()) }

// frame builds a binary frame, masked when key is set.
func frame(payload []byte, key []byte) []byte {
	b := []byte{0x82, byte(len(payload))}
	if key != nil {
		b[1] |= 0x80
		b = append(b, key...)
		for i, x := range payload {
			b = append(b, x^key[i&3])
		}
		return b
	}
	return append(b, payload...)
}

func TestMQTTOverWebSocket(t *testing.T) {
	connect := []byte{0x10, 17, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 5, 'w', 's', 'c', 'l', 'i'}
	connect[1] = byte(len(connect) - 2)
	p := New(mqtt.New(mqtt.Config{}))
	var s sink
	c := &proto.Context{Time: time.Unix(1, 0)}
	// The CONNECT split over two masked frames, a ping in between.
	in := append(frame(connect[:5], []byte{1, 2, 3, 4}), 0x89, 0x80, 9, 9, 9, 9)
	in = append(in, frame(connect[5:], []byte{5, 6, 7, 8})...)
	if n := p.Parse(c, in, &s); n != len(in) {
		t.Fatalf("consumed %d of %d", n, len(in))
	}
	c.Dir = proto.ToClient
	p.Parse(c, frame([]byte{0x20, 2, 0, 0}, nil), &s)
	if len(s) != 2 || s[0].Fields["mqtt.client_id"] != "wscli" || s[1].Action != "connack" {
		t.Fatalf("%+v", s)
	}
}

func FuzzParse(f *testing.F) {
	f.Add(frame([]byte{0x10, 0}, []byte{1, 2, 3, 4}))
	f.Add([]byte{0x82, 127, 0xff, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var s sink
		p := New(mqtt.New(mqtt.Config{}))
		if n := p.Parse(&proto.Context{}, b, &s); n < 0 || n > len(b) {
			t.Fatal(n)
		}
	})
}

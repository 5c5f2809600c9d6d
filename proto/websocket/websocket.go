package websocket

import (
	"encoding/binary"
	"strconv"

	"github.com/vigil-iot/vigil/proto"
)

// Kind names WebSocket anomalies (anomaly.app_proto "websocket").
const Kind = "websocket"

// Anomaly names (anomaly.event).
const (
	AnomalyMalformed = "malformed_frame" // reserved opcode or impossible length; decoding stops
)

// maxFrame bounds one frame.
const maxFrame = 16 << 20

// Parser unwraps one WebSocket connection.
type Parser struct {
	inner   proto.StreamParser // nil: frames are only skipped
	pending [2][]byte
	broken  bool
}

var _ proto.StreamParser = (*Parser)(nil)

// New returns a parser that feeds message payloads to inner (which may be
// nil).
func New(inner proto.StreamParser) *Parser { return &Parser{inner: inner} }

// Gap implements proto.StreamParser.
func (p *Parser) Gap(c *proto.Context, n int, out proto.Emitter) {
	p.pending[c.Dir&1] = nil
	if !p.broken {
		p.broken = true
		if p.inner != nil {
			p.inner.Gap(c, n, out)
		}
	}
}

// Parse implements proto.StreamParser.
func (p *Parser) Parse(c *proto.Context, data []byte, out proto.Emitter) int {
	if p.broken {
		return len(data)
	}
	d := c.Dir & 1
	n := 0
	for len(data)-n >= 2 {
		b := data[n:]
		op := b[0] & 0x0f
		masked := b[1]&0x80 != 0
		l := int(b[1] & 0x7f)
		h := 2
		switch l {
		case 126:
			if len(b) < 4 {
				return n
			}
			l = int(binary.BigEndian.Uint16(b[2:]))
			h = 4
		case 127:
			if len(b) < 10 {
				return n
			}
			l64 := binary.BigEndian.Uint64(b[2:])
			if l64 > maxFrame {
				p.broken = true
				out.Emit(c.Anomaly(Kind, AnomalyMalformed, "frame of "+strconv.FormatUint(l64, 10)+" bytes"))
				return len(data)
			}
			l = int(l64)
			h = 10
		}
		if op > 2 && op < 8 || op > 10 {
			p.broken = true
			out.Emit(c.Anomaly(Kind, AnomalyMalformed, "reserved opcode "+strconv.Itoa(int(op))))
			return len(data)
		}
		var key [4]byte
		if masked {
			if len(b) < h+4 {
				return n
			}
			copy(key[:], b[h:h+4])
			h += 4
		}
		if len(b) < h+l {
			return n
		}
		n += h + l
		if op >= 8 || p.inner == nil {
			continue // control frame, or nothing to feed
		}
		start := len(p.pending[d])
		p.pending[d] = append(p.pending[d], b[h:h+l]...)
		if masked {
			pl := p.pending[d][start:]
			for i := range pl {
				pl[i] ^= key[i&3]
			}
		}
		k := p.inner.Parse(c, p.pending[d], out)
		rest := copy(p.pending[d], p.pending[d][k:])
		p.pending[d] = p.pending[d][:rest]
		if len(p.pending[d]) > maxFrame {
			p.Gap(c, len(p.pending[d]), out)
			return len(data)
		}
	}
	return n
}

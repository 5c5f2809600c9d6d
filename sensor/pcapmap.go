package sensor

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

// Classic pcap magic numbers as read little-endian.
const (
	pcapMagicMicro   = 0xa1b2c3d4
	pcapMagicNano    = 0xa1b23c4d
	pcapMagicMicroBE = 0xd4c3b2a1
	pcapMagicNanoBE  = 0x4d3cb2a1
)

// pcapSnapMax is the capture length accepted whatever the snap length
// says (libpcap's MAXIMUM_SNAPLEN), as pcapgo accepts.
const pcapSnapMax = 262144

// memPcap reads a classic pcap file held in memory (a mapping of the
// file): each packet is a slice of it, with no copy and no system call.
// It reads what pcapgo.Reader reads and fails where it fails, with the
// same timestamps and errors (io.ErrUnexpectedEOF for a cut record).
type memPcap struct {
	b      []byte
	off    int
	be     bool   // big-endian file
	factor uint32 // 1000 for microsecond timestamps, 1 for nanoseconds
	snap   uint32
	maxCap int
	link   int
}

// isPlainPcap reports whether b starts with a classic (not gzipped)
// pcap header.
func isPlainPcap(b []byte) bool {
	if len(b) < 4 {
		return false
	}
	switch binary.LittleEndian.Uint32(b) {
	case pcapMagicMicro, pcapMagicNano, pcapMagicMicroBE, pcapMagicNanoBE:
		return true
	}
	return false
}

// newMemPcap checks the file header of b.
func newMemPcap(b []byte) (*memPcap, error) {
	if len(b) < 24 {
		return nil, io.ErrUnexpectedEOF
	}
	r := &memPcap{b: b, off: 24}
	switch m := binary.LittleEndian.Uint32(b); m {
	case pcapMagicMicro:
		r.factor = 1000
	case pcapMagicNano:
		r.factor = 1
	case pcapMagicMicroBE:
		r.be, r.factor = true, 1000
	case pcapMagicNanoBE:
		r.be, r.factor = true, 1
	default:
		return nil, fmt.Errorf("unknown magic %x", m)
	}
	if v := r.u16(b[4:]); v != 2 {
		return nil, fmt.Errorf("unknown major version %d", v)
	}
	if v := r.u16(b[6:]); v != 4 {
		return nil, fmt.Errorf("unknown minor version %d", v)
	}
	r.snap = r.u32(b[16:])
	r.maxCap = max(int(r.snap), pcapSnapMax)
	r.link = int(uint16(r.u32(b[20:])))
	return r, nil
}

func (r *memPcap) u16(b []byte) uint16 {
	if r.be {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (r *memPcap) u32(b []byte) uint32 {
	if r.be {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

// next implements source. The data stays valid as long as the mapping.
func (r *memPcap) next() ([]byte, time.Time, int, int, error) {
	rest := r.b[r.off:]
	if len(rest) == 0 {
		return nil, time.Time{}, 0, 0, io.EOF
	}
	if len(rest) < 16 {
		return nil, time.Time{}, 0, 0, io.ErrUnexpectedEOF
	}
	h := rest[:16]
	ts := time.Unix(int64(r.u32(h[0:])), int64(r.u32(h[4:])*r.factor)).UTC()
	capLen, wire := int(r.u32(h[8:])), int(r.u32(h[12:]))
	if capLen > r.maxCap {
		return nil, time.Time{}, 0, 0, fmt.Errorf("capture length exceeds snap length: %d > %d", capLen, r.snap)
	}
	if capLen > wire {
		return nil, time.Time{}, 0, 0, fmt.Errorf("capture length exceeds original packet length: %d > %d", capLen, wire)
	}
	if len(rest)-16 < capLen {
		r.off = len(r.b)
		return nil, time.Time{}, 0, 0, io.ErrUnexpectedEOF
	}
	r.off += 16 + capLen
	return rest[16 : 16+capLen : 16+capLen], ts, wire, r.link, nil
}

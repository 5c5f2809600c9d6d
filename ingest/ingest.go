package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
)

// DefaultMaxFuture is how far after the server's clock an event's time may
// be by default (the clock skew allowed to sources): later times are
// refused, so that a device cannot pin its last-seen time or escape
// retention with a date in the far future.
const DefaultMaxFuture = 5 * time.Minute

// CheckFuture returns an error when t is more than maxFuture after now.
func CheckFuture(t, now time.Time, maxFuture time.Duration) error {
	if t.Sub(now) > maxFuture {
		return fmt.Errorf("%s is more than %s ahead of the server's clock (%s)",
			t.UTC().Format(time.RFC3339), maxFuture, now.UTC().Format(time.RFC3339))
	}
	return nil
}

// DeriveID returns an event id in the format of vigil.NewID (the Unix
// milliseconds of t, then 8 bytes) whose second half is a hash of the
// parts instead of random bytes. The same parts and time give the same id,
// so an event that a source sends twice (a retried agent report) is
// stored once.
func DeriveID(t time.Time, parts ...string) string {
	var b [16]byte
	ms := uint64(t.UnixMilli())
	for i := 7; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(strconv.Itoa(len(p))))
		h.Write([]byte{':'})
		h.Write([]byte(p))
	}
	var sum [sha256.Size]byte
	copy(b[8:], h.Sum(sum[:0]))
	return hex.EncodeToString(b[:])
}

// LiftNetwork moves the ECS 5-tuple fields network.transport, source.ip,
// source.port, destination.ip and destination.port from e.Fields into
// e.Network, where detectors and vigil.Event.Field find them. A value that
// does not parse (an address that is not an IP, a port out of range) stays
// in Fields as it was, so nothing is lost. Values already in e.Network win.
func LiftNetwork(e *vigil.Event) {
	if len(e.Fields) == 0 {
		return
	}
	n := e.Network
	if n == nil {
		n = &vigil.Network{}
	}
	lifted := false
	if v, ok := e.Fields["network.transport"].(string); ok && v != "" && n.Transport == "" {
		n.Transport = strings.ToLower(v)
		delete(e.Fields, "network.transport")
		lifted = true
	}
	liftIP := func(key string, dst *netip.Addr) {
		v, ok := e.Fields[key].(string)
		if !ok || dst.IsValid() {
			return
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return
		}
		*dst = a.Unmap()
		delete(e.Fields, key)
		lifted = true
	}
	liftPort := func(key string, dst *uint16) {
		if *dst != 0 {
			return
		}
		var p uint64
		switch v := e.Fields[key].(type) {
		case string:
			x, err := strconv.ParseUint(v, 10, 16)
			if err != nil {
				return
			}
			p = x
		case float64:
			if v != float64(uint16(v)) {
				return
			}
			p = uint64(v)
		default:
			return
		}
		if p == 0 {
			return
		}
		*dst = uint16(p)
		delete(e.Fields, key)
		lifted = true
	}
	liftIP("source.ip", &n.SrcIP)
	liftPort("source.port", &n.SrcPort)
	liftIP("destination.ip", &n.DstIP)
	liftPort("destination.port", &n.DstPort)
	if lifted {
		e.Network = n
	}
	if len(e.Fields) == 0 {
		e.Fields = nil
	}
}

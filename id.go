package vigil

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// NewID returns a new unique id: 8 bytes of Unix milliseconds then 8 random
// bytes, hex-encoded, so ids sort by creation time.
func NewID() string {
	var b [16]byte
	putMillis(b[:8], time.Now())
	_, _ = rand.Read(b[8:])
	return hex.EncodeToString(b[:])
}

// DerivedID returns the id of something that must get the same id each
// time it is made from the same inputs: 8 bytes of t's Unix milliseconds
// then 8 bytes of the SHA-256 of parts, hex-encoded like NewID. Detection
// names an alert raised on an event this way, so the alert raised again
// when that event is evaluated again (a node died before its checkpoint
// was saved, and the next owner replays the event) is known as the same
// alert and not counted twice.
func DerivedID(t time.Time, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	var b [16]byte
	putMillis(b[:8], t)
	copy(b[8:], h.Sum(nil))
	return hex.EncodeToString(b[:])
}

func putMillis(b []byte, t time.Time) {
	ms := uint64(t.UnixMilli())
	for i := 7; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
}

package vigil

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// NewID returns a new unique id: 8 bytes of Unix milliseconds then 8 random
// bytes, hex-encoded, so ids sort by creation time.
func NewID() string {
	var b [16]byte
	ms := uint64(time.Now().UnixMilli())
	for i := 7; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	_, _ = rand.Read(b[8:])
	return hex.EncodeToString(b[:])
}

package sigma

import (
	"math/rand"
	"testing"
)

// TestMaskBlocks checks the vectorized masks against a byte loop, and
// the Go version against both.
func TestMaskBlocks(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	alpha := []byte{'"', '\\', 'a', 0, 0xff, 0x22 | 0x80, 0x5c | 0x80, ' ', 0x21, 0x23, 0x1f, 0x20, 0x9f, '\t'}
	for it := 0; it < 2000; it++ {
		n := 1 + r.Intn(4)
		b := make([]byte, n*64)
		for i := range b {
			b[i] = alpha[r.Intn(len(alpha))]
		}
		q, bs := make([]uint64, n), make([]uint64, n)
		q2, bs2 := make([]uint64, n), make([]uint64, n)
		if it%2 == 0 { // half the blocks without control characters
			for i := range b {
				if b[i] < 0x20 {
					b[i] = 'a'
				}
			}
		}
		ctl := maskBlocks(&b[0], n, &q[0], &bs[0])
		ctl2 := maskBlocksGo(&b[0], n, &q2[0], &bs2[0])
		wantCtl := false
		for _, ch := range b {
			wantCtl = wantCtl || ch < 0x20
		}
		if ctl != wantCtl || ctl2 != wantCtl {
			t.Fatalf("%x: control characters %v/%v, want %v", b, ctl, ctl2, wantCtl)
		}
		for k := 0; k < n; k++ {
			var wq, wb uint64
			for j := 0; j < 64; j++ {
				switch b[k*64+j] {
				case '"':
					wq |= 1 << j
				case '\\':
					wb |= 1 << j
				}
			}
			if q[k] != wq || bs[k] != wb || q2[k] != wq || bs2[k] != wb {
				t.Fatalf("block %d of %x: quotes %x/%x want %x, backslashes %x/%x want %x", k, b[k*64:k*64+64], q[k], q2[k], wq, bs[k], bs2[k], wb)
			}
		}
	}
}

func TestNextSet(t *testing.T) {
	m := []uint64{1 << 5, 0, 1<<63 | 1<<2}
	for _, c := range [][2]int{{0, 5}, {5, 5}, {6, 130}, {130, 130}, {131, 191}, {191, 191}, {192, -1}, {500, -1}} {
		if got := nextSet(m, c[0]); got != c[1] {
			t.Errorf("nextSet(%d) = %d, want %d", c[0], got, c[1])
		}
	}
}

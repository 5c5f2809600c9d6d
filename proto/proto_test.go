package proto

import "testing"

// TestFieldArena checks that the Fields an arena hands out do not
// overlap, even when a decoder sets more fields than it asked room for,
// and that a burst does not pin a large buffer after Reset.
func TestFieldArena(t *testing.T) {
	var a FieldArena
	var all []Fields
	for i := range 3 * arenaMax / 4 {
		f := a.Get(4)
		for j := range 4 + i%3 { // sometimes more than the room asked for
			f.Set("k", float64(i*10+j))
		}
		all = append(all, f)
	}
	for i, f := range all {
		if len(f) != 4+i%3 {
			t.Fatalf("fields %d: %d fields", i, len(f))
		}
		for j := range f {
			if v, _ := f[j].Val().(float64); v != float64(i*10+j) {
				t.Fatalf("fields %d: field %d is %v, want %d", i, j, v, i*10+j)
			}
		}
	}
	a.Reset()
	if cap(a.buf) > arenaMax {
		t.Fatalf("after a burst and Reset: %d fields kept", cap(a.buf))
	}
	a.Get(10)
	a.Reset()
	if cap(a.buf) > arenaMax || cap(a.buf) == 0 {
		t.Fatalf("steady: %d fields kept", cap(a.buf))
	}
}

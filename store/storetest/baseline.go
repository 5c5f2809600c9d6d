package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// testBaselines checks the learned baseline's checkpoints: one state per
// partition, replaced whole, binary-safe, with its time; ENOTFOUND before
// the first; bad arguments refused.
func testBaselines(t *testing.T, s store.Store) {
	if _, err := s.GetBaseline(ctx(t), 0); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Fatalf("GetBaseline before any: %v, want ENOTFOUND", err)
	}
	bin := []byte{0, 1, 2, 0xff, 0xfe, '\'', '"', 0}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	put := func(p int, at time.Time, state []byte) {
		t.Helper()
		if err := s.PutBaseline(ctx(t), store.Baseline{Partition: p, Saved: at, State: state}); err != nil {
			t.Fatalf("PutBaseline %d: %v", p, err)
		}
	}
	put(0, base, []byte("first"))
	put(0, base.Add(time.Minute).In(elsewhere), bin)
	put(7, base, big)
	got, err := s.GetBaseline(ctx(t), 0)
	if err != nil || !bytes.Equal(got.State, bin) || got.Partition != 0 || !got.Saved.Equal(base.Add(time.Minute)) {
		t.Errorf("GetBaseline 0: %v %v %x, want the second state at %v", err, got.Saved, got.State, base.Add(time.Minute))
	}
	got, err = s.GetBaseline(ctx(t), 7)
	if err != nil || !bytes.Equal(got.State, big) {
		t.Errorf("GetBaseline 7: %v, %d bytes, want %d", err, len(got.State), len(big))
	}
	if _, err := s.GetBaseline(ctx(t), 3); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Errorf("GetBaseline of another partition: %v, want ENOTFOUND", err)
	}
	for name, b := range map[string]store.Baseline{
		"negative partition": {Partition: -1, Saved: base, State: bin},
		"no time":            {Partition: 1, State: bin},
		"empty state":        {Partition: 1, Saved: base},
	} {
		if err := s.PutBaseline(ctx(t), b); vigil.ErrorCode(err) != vigil.EINVALID {
			t.Errorf("PutBaseline with %s: %v, want EINVALID", name, err)
		}
	}
}

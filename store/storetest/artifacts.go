package storetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

func artifact(id, product, version string, created time.Time, data []byte) vigil.Artifact {
	sum := sha256.Sum256(data)
	return vigil.Artifact{ID: id, Product: product, Version: version, Name: product + "-" + version + ".ipk",
		Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Signature: "c2lnbmF0dXJl", Created: created, CreatedBy: "alice"}
}

// testArtifacts checks update artifacts: metadata and bytes round-trip
// (binary-safe, 1 MiB), listing by product in creation order, an id never
// replaced (ECONFLICT), deletion, ENOTFOUND, and bad arguments refused.
func testArtifacts(t *testing.T, s store.Store) {
	if _, err := s.GetArtifact(ctx(t), "none"); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Fatalf("GetArtifact before any: %v, want ENOTFOUND", err)
	}
	if as, err := s.ListArtifacts(ctx(t), ""); err != nil || len(as) != 0 {
		t.Fatalf("ListArtifacts when empty: %v %v", as, err)
	}
	bin := []byte{0, 1, 2, 0xff, 0xfe, '\'', '"', 0}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	a1 := artifact("a1", "camfw", "2.1.0", base.Add(time.Minute).In(elsewhere), big)
	a1.Classes, a1.Models = []string{"camera"}, []string{"IPC-1", "IPC-2"}
	a0 := artifact("a0", "camfw", "2.0.9", base, bin)
	a2 := artifact("a2", "busybox", "1.36.1", base.Add(time.Hour), []byte("pkg"))
	for _, a := range []vigil.Artifact{a1, a0, a2} {
		data := map[string][]byte{"a1": big, "a0": bin, "a2": []byte("pkg")}[a.ID]
		if err := s.PutArtifact(ctx(t), a, data); err != nil {
			t.Fatalf("PutArtifact %s: %v", a.ID, err)
		}
	}
	got, err := s.GetArtifact(ctx(t), "a1")
	a1.Created = a1.Created.UTC()
	if err != nil || !reflect.DeepEqual(got, a1) {
		t.Errorf("GetArtifact a1:\n%+v %v\nwant\n%+v", got, err, a1)
	}
	if data, err := s.ArtifactData(ctx(t), "a1"); err != nil || !bytes.Equal(data, big) {
		t.Errorf("ArtifactData a1: %d bytes %v, want %d", len(data), err, len(big))
	}
	if data, err := s.ArtifactData(ctx(t), "a0"); err != nil || !bytes.Equal(data, bin) {
		t.Errorf("ArtifactData a0: %x %v", data, err)
	}
	ids := func(product string) []string {
		t.Helper()
		as, err := s.ListArtifacts(ctx(t), product)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}
	if got := ids(""); !reflect.DeepEqual(got, []string{"a2", "a0", "a1"}) {
		t.Errorf("ListArtifacts all: %v", got)
	}
	if got := ids("camfw"); !reflect.DeepEqual(got, []string{"a0", "a1"}) {
		t.Errorf("ListArtifacts camfw: %v", got)
	}
	again := artifact("a0", "other", "1", base, []byte("x"))
	if err := s.PutArtifact(ctx(t), again, []byte("x")); vigil.ErrorCode(err) != vigil.ECONFLICT {
		t.Errorf("PutArtifact of an existing id: %v, want ECONFLICT", err)
	}
	if err := s.DeleteArtifact(ctx(t), "a0"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteArtifact(ctx(t), "a0"); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Errorf("DeleteArtifact twice: %v, want ENOTFOUND", err)
	}
	if _, err := s.ArtifactData(ctx(t), "a0"); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Errorf("ArtifactData after delete: %v, want ENOTFOUND", err)
	}
	if got := ids("camfw"); !reflect.DeepEqual(got, []string{"a1"}) {
		t.Errorf("ListArtifacts after delete: %v", got)
	}
	good := artifact("b", "p", "1", base, []byte("data"))
	for name, c := range map[string]struct {
		a    vigil.Artifact
		data []byte
	}{
		"no id":        {func() vigil.Artifact { a := good; a.ID = ""; return a }(), []byte("data")},
		"no version":   {func() vigil.Artifact { a := good; a.Version = ""; return a }(), []byte("data")},
		"no signature": {func() vigil.Artifact { a := good; a.Signature = ""; return a }(), []byte("data")},
		"no time":      {func() vigil.Artifact { a := good; a.Created = time.Time{}; return a }(), []byte("data")},
		"wrong hash":   {good, []byte("datb")},
		"wrong size":   {func() vigil.Artifact { a := good; a.Size = 5; return a }(), []byte("data")},
		"empty":        {good, nil},
	} {
		if err := s.PutArtifact(ctx(t), c.a, c.data); vigil.ErrorCode(err) != vigil.EINVALID {
			t.Errorf("PutArtifact with %s: %v, want EINVALID", name, err)
		}
	}
	if err := store.CheckArtifact(good, make([]byte, store.MaxArtifactSize+1)); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Errorf("an artifact over MaxArtifactSize: %v, want EINVALID", err)
	}
}

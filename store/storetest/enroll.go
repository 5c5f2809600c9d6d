package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// testEnrollTokens checks enrollment tokens: created with their hash only,
// found by hash, consumed once and only while unexpired, listed oldest
// first, deleted; taken ids and hashes refused, bad ones refused.
func testEnrollTokens(t *testing.T, s store.Store) {
	_, err := s.GetEnrollToken(ctx(t), tokenHash('a'))
	wantCode(t, err, vigil.ENOTFOUND, "GetEnrollToken before any")
	a := store.EnrollToken{ID: "e1", Class: "camera", Hash: tokenHash('a'), Created: base.Add(time.Minute), Expires: base.Add(time.Hour)}
	b := store.EnrollToken{ID: "e2", Class: "plc-gateway", Hash: tokenHash('b'), Created: base, Expires: base.Add(2 * time.Hour)}
	must(t, s.CreateEnrollToken(ctx(t), a), "CreateEnrollToken a")
	must(t, s.CreateEnrollToken(ctx(t), b), "CreateEnrollToken b")
	got, err := s.GetEnrollToken(ctx(t), a.Hash)
	must(t, err, "GetEnrollToken")
	deepEqual(t, "enrollment token by hash", got, a)
	all, err := s.ListEnrollTokens(ctx(t))
	must(t, err, "ListEnrollTokens")
	deepEqual(t, "enrollment tokens oldest first", all, []store.EnrollToken{b, a})

	for name, dup := range map[string]store.EnrollToken{
		"id":   {ID: "e1", Class: "camera", Hash: tokenHash('c'), Created: base, Expires: base.Add(time.Hour)},
		"hash": {ID: "e3", Class: "camera", Hash: tokenHash('a'), Created: base, Expires: base.Add(time.Hour)},
	} {
		wantCode(t, s.CreateEnrollToken(ctx(t), dup), vigil.ECONFLICT, "CreateEnrollToken with a taken "+name)
	}
	for i, bad := range []store.EnrollToken{
		{Class: "camera", Hash: tokenHash('d'), Created: base, Expires: base.Add(time.Hour)},
		{ID: "e4", Hash: tokenHash('d'), Created: base, Expires: base.Add(time.Hour)},
		{ID: "e4", Class: "camera", Hash: tokenHash('d'), Expires: base.Add(time.Hour)},
		{ID: "e4", Class: "camera", Hash: tokenHash('d'), Created: base},
		{ID: "e4", Class: "camera", Hash: "vge_plaintext", Created: base, Expires: base.Add(time.Hour)},
	} {
		wantCode(t, s.CreateEnrollToken(ctx(t), bad), vigil.EINVALID, fmt.Sprintf("CreateEnrollToken bad %d", i))
	}

	// Consumed once, before its expiry only; the time is stored in UTC.
	now := base.Add(30 * time.Minute)
	_, err = s.ConsumeEnrollToken(ctx(t), a.Hash, "cam-1", base.Add(time.Hour))
	wantCode(t, err, vigil.ENOTFOUND, "ConsumeEnrollToken at its expiry")
	got, err = s.ConsumeEnrollToken(ctx(t), a.Hash, "cam-1", now.In(elsewhere))
	must(t, err, "ConsumeEnrollToken")
	want := a
	want.Used, want.UsedBy = now, "cam-1"
	deepEqual(t, "consumed token", got, want)
	if got.Used.Location() != time.UTC {
		t.Fatalf("Used in %v, want UTC", got.Used.Location())
	}
	_, err = s.ConsumeEnrollToken(ctx(t), a.Hash, "cam-2", now)
	wantCode(t, err, vigil.ENOTFOUND, "ConsumeEnrollToken again")
	_, err = s.ConsumeEnrollToken(ctx(t), tokenHash('f'), "cam-2", now)
	wantCode(t, err, vigil.ENOTFOUND, "ConsumeEnrollToken of none")
	got, _ = s.GetEnrollToken(ctx(t), a.Hash)
	deepEqual(t, "token after a second use refused", got, want)

	// A token created used (imported) cannot be consumed.
	c := store.EnrollToken{ID: "e5", Class: "camera", Hash: tokenHash('c'), Created: base, Expires: base.Add(time.Hour), Used: base.Add(time.Second), UsedBy: "cam-0"}
	must(t, s.CreateEnrollToken(ctx(t), c), "CreateEnrollToken used")
	_, err = s.ConsumeEnrollToken(ctx(t), c.Hash, "cam-3", now)
	wantCode(t, err, vigil.ENOTFOUND, "ConsumeEnrollToken of a token created used")

	must(t, s.DeleteEnrollToken(ctx(t), "e2"), "DeleteEnrollToken")
	wantCode(t, s.DeleteEnrollToken(ctx(t), "e2"), vigil.ENOTFOUND, "DeleteEnrollToken again")
	_, err = s.ConsumeEnrollToken(ctx(t), b.Hash, "plc-1", now)
	wantCode(t, err, vigil.ENOTFOUND, "ConsumeEnrollToken of a deleted token")
	all, _ = s.ListEnrollTokens(ctx(t))
	deepEqual(t, "enrollment tokens after a delete", all, []store.EnrollToken{c, want})
}

// testEnrollTokensConcurrent checks that of nodes consuming one token at
// once, exactly one enrolls.
func testEnrollTokensConcurrent(t *testing.T, s store.Store) {
	tok := store.EnrollToken{ID: "race", Class: "camera", Hash: tokenHash('9'), Created: base, Expires: base.Add(time.Hour)}
	must(t, s.CreateEnrollToken(ctx(t), tok), "CreateEnrollToken")
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.ConsumeEnrollToken(ctx(t), tok.Hash, fmt.Sprintf("cam-%d", i), base.Add(time.Minute))
		}()
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won >= 0:
			t.Fatalf("ConsumeEnrollToken succeeded for cam-%d and cam-%d", won, i)
		case err == nil:
			won = i
		case vigil.ErrorCode(err) != vigil.ENOTFOUND:
			t.Fatalf("ConsumeEnrollToken %d: %v, want nil or ENOTFOUND", i, err)
		}
	}
	if won < 0 {
		t.Fatal("no ConsumeEnrollToken succeeded")
	}
	got, _ := s.GetEnrollToken(ctx(t), tok.Hash)
	if got.UsedBy != fmt.Sprintf("cam-%d", won) {
		t.Fatalf("token used by %q, want cam-%d", got.UsedBy, won)
	}
}

// testRevocations checks revocations: by device and by serial, the later
// time kept, looked up together, bad ones refused.
func testRevocations(t *testing.T, s store.Store) {
	got, err := s.Revoked(ctx(t), "cam-1", "ab12")
	must(t, err, "Revoked before any")
	if len(got) != 0 {
		t.Fatalf("Revoked before any = %+v", got)
	}
	dev := store.Revocation{Kind: store.RevokeDevice, Key: "cam-1", At: base.Add(time.Hour)}
	ser := store.Revocation{Kind: store.RevokeSerial, Key: "ab12", At: base}
	must(t, s.Revoke(ctx(t), dev), "Revoke device")
	must(t, s.Revoke(ctx(t), ser), "Revoke serial")
	// Again, earlier: the later time stays; later: it moves, in UTC.
	must(t, s.Revoke(ctx(t), store.Revocation{Kind: store.RevokeDevice, Key: "cam-1", At: base}), "Revoke device earlier")
	got, err = s.Revoked(ctx(t), "cam-1", "")
	must(t, err, "Revoked device")
	deepEqual(t, "device revoked, earlier again", got, []store.Revocation{dev})
	dev.At = base.Add(2 * time.Hour)
	must(t, s.Revoke(ctx(t), store.Revocation{Kind: dev.Kind, Key: dev.Key, At: dev.At.In(elsewhere)}), "Revoke device later")
	got, err = s.Revoked(ctx(t), "cam-1", "ab12")
	must(t, err, "Revoked both")
	deepEqual(t, "device and serial revoked", got, []store.Revocation{dev, ser})
	if got[0].At.Location() != time.UTC {
		t.Fatalf("At in %v, want UTC", got[0].At.Location())
	}
	// A serial named like a device is not that device, nor the reverse.
	got, _ = s.Revoked(ctx(t), "ab12", "cam-1")
	if len(got) != 0 {
		t.Fatalf("Revoked with kinds swapped = %+v, want none", got)
	}
	for i, bad := range []store.Revocation{
		{Kind: "user", Key: "x", At: base},
		{Kind: store.RevokeDevice, At: base},
		{Kind: store.RevokeSerial, Key: "ab"},
	} {
		wantCode(t, s.Revoke(ctx(t), bad), vigil.EINVALID, fmt.Sprintf("Revoke bad %d", i))
	}
	all, err := s.ListRevocations(ctx(t))
	must(t, err, "ListRevocations")
	deepEqual(t, "all revocations", all, []store.Revocation{dev, ser})
}

package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

func normAudit(r vigil.AuditRecord) vigil.AuditRecord {
	r.Time = r.Time.UTC()
	return r
}

// checkChain fails unless records are Seq 1..n, each linked to the one
// before and each Hash right.
func checkChain(t *testing.T, records []vigil.AuditRecord) {
	t.Helper()
	prev := ""
	for i, r := range records {
		if r.Seq != int64(i+1) {
			t.Fatalf("record %d has Seq %d, want %d", i, r.Seq, i+1)
		}
		if r.PrevHash != prev {
			t.Fatalf("record %d: PrevHash %q, want the previous Hash %q", r.Seq, r.PrevHash, prev)
		}
		if h := r.ComputeHash(); r.Hash != h {
			t.Fatalf("record %d: Hash %q, want %q", r.Seq, r.Hash, h)
		}
		prev = r.Hash
	}
}

func testAuditChain(t *testing.T, s store.Store) {
	list, err := s.ListAudit(ctx(t), 0, 0)
	must(t, err, "ListAudit of an empty trail")
	if len(list) != 0 {
		t.Fatalf("empty trail lists %d records", len(list))
	}
	in := []vigil.AuditRecord{
		{Time: base.In(elsewhere), Actor: "alice", Action: "action.approve", Object: "action:act-1", Detail: `{"reason":"confirmed brute force"}`},
		{Time: base.Add(time.Second), Actor: "playbook:contain", Action: "action.send", Object: "device:cam-1"},
		// The caller's Seq and hashes are ignored: the store assigns them.
		{Seq: 99, PrevHash: "forged", Hash: "forged", Time: base.Add(2 * time.Second), Actor: "token:ci", Action: "config.change", Object: "config", Detail: "ünïcode\nline"},
	}
	var appended []vigil.AuditRecord
	for _, r := range in {
		got, err := s.AppendAudit(ctx(t), r)
		must(t, err, "AppendAudit")
		appended = append(appended, got)
	}
	checkChain(t, appended)
	for i, r := range appended {
		want := in[i]
		want.Seq, want.PrevHash, want.Hash = r.Seq, r.PrevHash, r.Hash
		deepEqual(t, "appended record", normAudit(r), normAudit(want))
	}
	if appended[0].PrevHash != "" {
		t.Fatalf("first record has PrevHash %q, want empty", appended[0].PrevHash)
	}
	list, err = s.ListAudit(ctx(t), 0, 0)
	must(t, err, "ListAudit")
	checkChain(t, list)
	for i := range list {
		deepEqual(t, "listed record", normAudit(list[i]), normAudit(appended[i]))
	}
}

func testAuditConcurrent(t *testing.T, s store.Store) {
	const writers, each = 8, 25
	seqs := make(chan int64, writers*each)
	runConcurrently(writers, func(w int) {
		for i := range each {
			r, err := s.AppendAudit(ctx(t), vigil.AuditRecord{
				Time:   base.Add(time.Duration(w*each+i) * time.Millisecond),
				Actor:  fmt.Sprintf("writer-%d", w),
				Action: "test.append",
				Object: fmt.Sprintf("n:%d", i),
			})
			if err != nil {
				t.Errorf("AppendAudit: %v", err)
				return
			}
			if h := r.ComputeHash(); r.Hash != h {
				t.Errorf("returned record %d: Hash %q, want %q", r.Seq, r.Hash, h)
			}
			seqs <- r.Seq
		}
	})
	close(seqs)
	seen := map[int64]bool{}
	for q := range seqs {
		if seen[q] {
			t.Fatalf("Seq %d returned to two appends", q)
		}
		seen[q] = true
	}
	list, err := s.ListAudit(ctx(t), 0, 0)
	must(t, err, "ListAudit")
	if len(list) != writers*each {
		t.Fatalf("ListAudit: %d records, want %d", len(list), writers*each)
	}
	checkChain(t, list)
}

func testAuditList(t *testing.T, s store.Store) {
	for i := range 20 {
		_, err := s.AppendAudit(ctx(t), vigil.AuditRecord{Time: base.Add(time.Duration(i) * time.Second), Actor: "a", Action: "x", Object: fmt.Sprint(i)})
		must(t, err, "AppendAudit")
	}
	seqsOf := func(rs []vigil.AuditRecord) []int64 {
		var out []int64
		for _, r := range rs {
			out = append(out, r.Seq)
		}
		return out
	}
	check := func(after int64, limit int, want ...int64) {
		t.Helper()
		got, err := s.ListAudit(ctx(t), after, limit)
		must(t, err, "ListAudit")
		if g := seqsOf(got); fmt.Sprint(g) != fmt.Sprint(want) {
			t.Fatalf("ListAudit(%d, %d) = %v, want %v", after, limit, g, want)
		}
	}
	check(0, 3, 1, 2, 3)
	check(17, 0, 18, 19, 20)
	check(15, 2, 16, 17)
	check(20, 0)
	check(25, 5)
	// Reading the trail page by page gives back the whole chain.
	var all []vigil.AuditRecord
	for after := int64(0); ; {
		page, err := s.ListAudit(ctx(t), after, 6)
		must(t, err, "ListAudit")
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		after = page[len(page)-1].Seq
	}
	if len(all) != 20 {
		t.Fatalf("paged audit: %d records, want 20", len(all))
	}
	checkChain(t, all)
}

// RunAuditKey checks the sealing of audit records: open must return a new,
// empty store that seals appended records with key (nil: does not seal).
// Run closes nothing here: open registers its own cleanup.
func RunAuditKey(t *testing.T, open func(t *testing.T, key []byte) store.Store) {
	key := []byte("0123456789abcdef0123456789abcdef")
	t.Run("Audit/Sealed", func(t *testing.T) {
		s := open(t, key)
		in := []vigil.AuditRecord{
			{Time: base, Actor: "token:alice", Action: "device.revoke", Object: "device:cam-1", Outcome: vigil.OutcomeOK},
			{Time: base.Add(time.Second), Actor: "token:bob", Action: "token.create", Object: "/api/v1/tokens", Outcome: vigil.OutcomeDenied},
			// A caller's MAC is ignored: the store computes it.
			{Time: base.Add(2 * time.Second), Actor: "vigil", Action: "config.change", Object: "config", MAC: "forged"},
		}
		for _, r := range in {
			got, err := s.AppendAudit(ctx(t), r)
			must(t, err, "AppendAudit")
			if got.MAC == "" || got.MAC != got.ComputeMAC(key) {
				t.Fatalf("record %d: MAC %q, want %q", got.Seq, got.MAC, got.ComputeMAC(key))
			}
		}
		list, err := s.ListAudit(ctx(t), 0, 0)
		must(t, err, "ListAudit")
		checkChain(t, list)
		for i, r := range list {
			if r.Outcome != in[i].Outcome {
				t.Fatalf("record %d: outcome %q, want %q", r.Seq, r.Outcome, in[i].Outcome)
			}
			if r.MAC != r.ComputeMAC(key) {
				t.Fatalf("listed record %d: MAC %q, want %q", r.Seq, r.MAC, r.ComputeMAC(key))
			}
		}
		// The outcome is part of the hash: the same record with another
		// outcome hashes differently.
		r := list[0]
		r.Outcome = vigil.OutcomeFailed
		if r.ComputeHash() == list[0].Hash {
			t.Fatal("the outcome is not covered by the hash")
		}
	})
	t.Run("Audit/Unsealed", func(t *testing.T) {
		s := open(t, nil)
		got, err := s.AppendAudit(ctx(t), vigil.AuditRecord{Time: base, Actor: "a", Action: "x", Object: "y", MAC: "forged"})
		must(t, err, "AppendAudit")
		if got.MAC != "" {
			t.Fatalf("a store without a key stored MAC %q", got.MAC)
		}
	})
}

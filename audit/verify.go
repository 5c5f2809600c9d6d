package audit

import (
	"context"
	"fmt"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// Problem kinds Verify reports.
const (
	ProblemHash     = "hash_mismatch"   // the stored hash does not match the record's content
	ProblemPrevHash = "prev_hash_break" // prev_hash is not the previous record's hash
	ProblemSeqGap   = "seq_gap"         // a sequence number is missing or repeated
)

// Report is the outcome of Verify.
type Report struct {
	// Records is how many records were read.
	Records int64 `json:"records"`
	// LastSeq and LastHash are those of the last record read: an operator
	// can write them down and later check the trail was not truncated.
	LastSeq  int64  `json:"last_seq"`
	LastHash string `json:"last_hash,omitempty"`
	// OK is true when every record holds.
	OK bool `json:"ok"`
	// BadSeq is the first record that does not hold (0 when OK).
	BadSeq int64 `json:"bad_seq,omitempty"`
	// Problem is one of the Problem* kinds and Detail says why in words.
	Problem string `json:"problem,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// String is one line for the CLI.
func (r Report) String() string {
	if r.OK {
		return fmt.Sprintf("audit trail ok: %d records, last seq %d hash %s", r.Records, r.LastSeq, r.LastHash)
	}
	return fmt.Sprintf("audit trail BROKEN at seq %d (%s): %s (%d records read)", r.BadSeq, r.Problem, r.Detail, r.Records)
}

// pageSize is how many records Verify reads at once.
const pageSize = 1000

// Verify walks the whole chain in sequence order, recomputes each record's
// hash and checks that it links to the previous one and that sequence
// numbers run 1, 2, 3, ... without gaps. It stops at the first record that
// does not hold and names it in the Report (OK false). The error is only
// for failing to read the store: a broken chain is a Report, not an error.
func Verify(ctx context.Context, st store.Audit) (Report, error) {
	var (
		rep      Report
		prevHash string
		after    int64
	)
	for {
		recs, err := st.ListAudit(ctx, after, pageSize)
		if err != nil {
			return rep, fmt.Errorf("cannot read audit trail after seq %d: %w", after, err)
		}
		for i := range recs {
			r := &recs[i]
			if p, d := check(r, rep.LastSeq, prevHash); p != "" {
				rep.BadSeq, rep.Problem, rep.Detail = r.Seq, p, d
				return rep, nil
			}
			rep.Records++
			rep.LastSeq, rep.LastHash = r.Seq, r.Hash
			prevHash = r.Hash
		}
		if len(recs) < pageSize {
			break
		}
		after = recs[len(recs)-1].Seq
	}
	rep.OK = true
	return rep, nil
}

// check returns the problem with r, given the previous record's seq and
// hash, or "" when it holds.
func check(r *vigil.AuditRecord, lastSeq int64, prevHash string) (problem, detail string) {
	if r.Seq != lastSeq+1 {
		if lastSeq == 0 {
			return ProblemSeqGap, fmt.Sprintf("the trail starts at seq %d, not 1", r.Seq)
		}
		return ProblemSeqGap, fmt.Sprintf("seq %d follows seq %d", r.Seq, lastSeq)
	}
	if r.PrevHash != prevHash {
		return ProblemPrevHash, fmt.Sprintf("prev_hash %q is not the hash of seq %d (%q)", short(r.PrevHash), lastSeq, short(prevHash))
	}
	if h := r.ComputeHash(); h != r.Hash {
		return ProblemHash, fmt.Sprintf("stored hash %s but its content hashes to %s (%s by %s on %s)", short(r.Hash), short(h), r.Action, r.Actor, r.Object)
	}
	return "", ""
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

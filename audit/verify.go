package audit

import (
	"context"
	"crypto/hmac"
	"fmt"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// Problem kinds Verify reports.
const (
	ProblemHash     = "hash_mismatch"   // the stored hash does not match the record's content
	ProblemPrevHash = "prev_hash_break" // prev_hash is not the previous record's hash
	ProblemSeqGap   = "seq_gap"         // a sequence number is missing or repeated
	// ProblemMAC: a record's MAC is not the audit key's MAC of its hash:
	// the record was rewritten (its hash recomputed) by someone without
	// the key.
	ProblemMAC = "mac_mismatch"
	// ProblemUnsealed: a record carries no MAC although the key is known
	// and a record before it carries one, or the newest record carries
	// none: the trail was rewritten without the key.
	ProblemUnsealed = "unsealed"
	// ProblemTruncated: the anchor names a record the trail no longer has
	// (the newest records were deleted).
	ProblemTruncated = "truncated"
	// ProblemAnchorMismatch: the record the anchor names has another hash
	// (it was replaced).
	ProblemAnchorMismatch = "anchor_mismatch"
	// ProblemAnchorInvalid: the anchor's MAC is not the audit key's (a
	// forged or damaged anchor, or another key).
	ProblemAnchorInvalid = "anchor_invalid"
)

// VerifyOptions are what Verify checks beyond the chain itself.
type VerifyOptions struct {
	// Key is the audit key: with it, every record from the first sealed
	// one on, and the newest record, must carry the key's MAC.
	Key []byte
	// Anchor, when set, is the last anchor exported: the trail must still
	// hold the record it names, with its hash.
	Anchor *Anchor
}

// Report is the outcome of Verify.
type Report struct {
	// Records is how many records were read.
	Records int64 `json:"records"`
	// LastSeq and LastHash are those of the last record read: an operator
	// can write them down and later check the trail was not truncated.
	LastSeq  int64  `json:"last_seq"`
	LastHash string `json:"last_hash,omitempty"`
	// Keyed is true when the MACs were checked with the audit key; Sealed
	// is how many records carry the key's MAC, Unsealed how many older
	// ones, written before the key existed, carry none (the MAC of a later
	// record vouches for them through the chain).
	Keyed    bool  `json:"keyed"`
	Sealed   int64 `json:"sealed"`
	Unsealed int64 `json:"unsealed"`
	// Anchor is the anchor checked against, if any.
	Anchor *Anchor `json:"anchor,omitempty"`
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
		s := fmt.Sprintf("audit trail ok: %d records, last seq %d hash %s", r.Records, r.LastSeq, r.LastHash)
		if r.Keyed {
			s += fmt.Sprintf("; %d sealed with the audit key", r.Sealed)
			if r.Unsealed > 0 {
				s += fmt.Sprintf(", %d older ones covered by the chain", r.Unsealed)
			}
		} else {
			s += "; MACs not checked (no audit key)"
		}
		if r.Anchor != nil {
			s += fmt.Sprintf("; anchor seq %d of %s holds", r.Anchor.Seq, r.Anchor.Time.Format(time.RFC3339))
		} else {
			s += "; no anchor to check truncation against"
		}
		return s
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
// Verify checks no MAC and no anchor: VerifyWith does.
func Verify(ctx context.Context, st store.Audit) (Report, error) {
	return VerifyWith(ctx, st, VerifyOptions{})
}

// VerifyWith is Verify that also checks, with o.Key, that the trail
// carries the audit key's MACs (a rewritten trail does not), and, with
// o.Anchor, that the trail still holds the anchored record (a truncated
// trail does not). An anchor whose MAC is not the key's is reported as
// ProblemAnchorInvalid.
func VerifyWith(ctx context.Context, st store.Audit, o VerifyOptions) (Report, error) {
	var (
		rep      Report
		prevHash string
		after    int64
		sealed   bool // a sealed record was seen
	)
	rep.Keyed = len(o.Key) > 0
	rep.Anchor = o.Anchor
	if o.Anchor != nil && rep.Keyed && !o.Anchor.Valid(o.Key) {
		rep.BadSeq, rep.Problem = o.Anchor.Seq, ProblemAnchorInvalid
		rep.Detail = fmt.Sprintf("the anchor of seq %d (%s) does not carry the audit key's MAC: it is forged, damaged or made with another key", o.Anchor.Seq, o.Anchor.Time.Format(time.RFC3339))
		return rep, nil
	}
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
			if rep.Keyed {
				switch {
				case r.MAC == "" && sealed:
					rep.BadSeq, rep.Problem = r.Seq, ProblemUnsealed
					rep.Detail = fmt.Sprintf("seq %d carries no MAC after sealed records: written or rewritten without the audit key", r.Seq)
					return rep, nil
				case r.MAC == "":
					rep.Unsealed++
				case !hmac.Equal([]byte(r.MAC), []byte(r.ComputeMAC(o.Key))):
					rep.BadSeq, rep.Problem = r.Seq, ProblemMAC
					rep.Detail = fmt.Sprintf("seq %d does not carry the audit key's MAC: its hash was recomputed without the key (%s by %s on %s)", r.Seq, r.Action, r.Actor, r.Object)
					return rep, nil
				default:
					sealed = true
					rep.Sealed++
				}
			}
			if a := o.Anchor; a != nil && r.Seq == a.Seq && r.Hash != a.Hash {
				rep.BadSeq, rep.Problem = r.Seq, ProblemAnchorMismatch
				rep.Detail = fmt.Sprintf("seq %d hashes to %s, but the anchor of %s names %s: the record was replaced", r.Seq, short(r.Hash), a.Time.Format(time.RFC3339), short(a.Hash))
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
	if rep.Keyed && rep.Records > 0 && !sealed {
		rep.BadSeq, rep.Problem = rep.LastSeq, ProblemUnsealed
		rep.Detail = fmt.Sprintf("none of the %d records carries the audit key's MAC: the trail was written without the key or rewritten", rep.Records)
		return rep, nil
	}
	if a := o.Anchor; a != nil && rep.LastSeq < a.Seq {
		rep.BadSeq, rep.Problem = a.Seq, ProblemTruncated
		rep.Detail = fmt.Sprintf("the anchor of %s names seq %d (hash %s), but the trail ends at seq %d: %d newest records were deleted",
			a.Time.Format(time.RFC3339), a.Seq, short(a.Hash), rep.LastSeq, a.Seq-rep.LastSeq)
		return rep, nil
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

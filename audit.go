package vigil

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// AuditRecord is one entry of the append-only, hash-chained audit trail.
// Hash covers every other field but MAC, and PrevHash, so editing or
// removing a stored record breaks the chain from that record on. MAC is
// the HMAC of Hash under a key kept out of the database (the data dir's
// audit key): whoever can rewrite the database but not read the key cannot
// recompute a chain that carries it.
type AuditRecord struct {
	Seq    int64     `json:"seq"`
	Time   time.Time `json:"time"`
	Actor  string    `json:"actor"`  // "token:<name>", "device:<id>", "playbook:<name>" or "vigil"
	Action string    `json:"action"` // "action.approve", "config.change", "token.create", ...
	Object string    `json:"object"` // what it was done to: "action:<id>", "device:<id>"
	Detail string    `json:"detail,omitempty"`
	// Outcome is how a request ended: ok, denied (the caller's role may
	// not), refused (bad request, not found, conflict) or failed (server
	// error). Empty for records that are not requests.
	Outcome  string `json:"outcome,omitempty"`
	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
	// MAC is the hex HMAC-SHA256 of Hash under the audit key; empty for
	// records stored without a key (before the key existed, or by a store
	// opened without one).
	MAC string `json:"mac,omitempty"`
}

// Outcomes of audited requests.
const (
	OutcomeOK      = "ok"
	OutcomeDenied  = "denied"
	OutcomeRefused = "refused"
	OutcomeFailed  = "failed"
)

// ComputeHash returns the hex SHA-256 of the record's content and PrevHash.
// It ignores the Hash and MAC fields. An empty Outcome is not hashed, so
// records written before the field existed keep their hash.
func (r *AuditRecord) ComputeHash() string {
	h := sha256.New()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(r.Seq))
	h.Write(b[:])
	binary.BigEndian.PutUint64(b[:], uint64(r.Time.UTC().UnixNano()))
	h.Write(b[:])
	fields := []string{r.Actor, r.Action, r.Object, r.Detail, r.PrevHash}
	if r.Outcome != "" {
		fields = append(fields, r.Outcome)
	}
	for _, s := range fields {
		binary.BigEndian.PutUint64(b[:], uint64(len(s)))
		h.Write(b[:])
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ComputeMAC returns the hex HMAC-SHA256 of the record's Hash under key.
// Hash covers Seq and PrevHash, so the MAC of the last record vouches for
// the whole chain up to it.
func (r *AuditRecord) ComputeMAC(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("vigil-audit-v1\x00"))
	m.Write([]byte(r.Hash))
	return hex.EncodeToString(m.Sum(nil))
}

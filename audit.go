package vigil

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// AuditRecord is one entry of the append-only, hash-chained audit trail.
// Hash covers every other field and PrevHash, so editing or removing a
// stored record breaks the chain from that record on.
type AuditRecord struct {
	Seq      int64     `json:"seq"`
	Time     time.Time `json:"time"`
	Actor    string    `json:"actor"`  // user, token name, or "playbook:<name>"
	Action   string    `json:"action"` // "action.approve", "config.change", "token.create", ...
	Object   string    `json:"object"` // what it was done to: "action:<id>", "device:<id>"
	Detail   string    `json:"detail,omitempty"`
	PrevHash string    `json:"prev_hash"`
	Hash     string    `json:"hash"`
}

// ComputeHash returns the hex SHA-256 of the record's content and PrevHash.
// It ignores the Hash field itself.
func (r *AuditRecord) ComputeHash() string {
	h := sha256.New()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(r.Seq))
	h.Write(b[:])
	binary.BigEndian.PutUint64(b[:], uint64(r.Time.UTC().UnixNano()))
	h.Write(b[:])
	for _, s := range []string{r.Actor, r.Action, r.Object, r.Detail, r.PrevHash} {
		binary.BigEndian.PutUint64(b[:], uint64(len(s)))
		h.Write(b[:])
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil))
}

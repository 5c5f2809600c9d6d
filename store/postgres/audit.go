package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-iot/vigil"
)

// AppendAudit appends r to the audit trail. In one transaction holding a
// lock that only other appends wait for, it reads the last record, then
// assigns r's Seq, PrevHash and Hash and stores it, so concurrent appends
// (from any node) keep one unbroken chain.
func (s *Store) AppendAudit(ctx context.Context, r vigil.AuditRecord) (vigil.AuditRecord, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return vigil.AuditRecord{}, fmt.Errorf("cannot begin audit append: %w", err)
	}
	defer tx.Rollback(ctx)
	// The lock conflicts with itself only: appends queue, reads go on.
	if _, err := tx.Exec(ctx, "LOCK TABLE audit IN SHARE ROW EXCLUSIVE MODE"); err != nil {
		return vigil.AuditRecord{}, fmt.Errorf("cannot lock the audit trail: %w", err)
	}
	var (
		last     int64
		lastHash string
	)
	err = tx.QueryRow(ctx, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").Scan(&last, &lastHash)
	if err != nil && !isNoRows(err) {
		return vigil.AuditRecord{}, fmt.Errorf("cannot read the audit trail's last record: %w", err)
	}
	r.Time = r.Time.UTC()
	r.Seq = last + 1
	r.PrevHash = lastHash
	r.Actor, r.Action, r.Object, r.Detail, r.Outcome = noNUL(r.Actor), noNUL(r.Action), noNUL(r.Object), noNUL(r.Detail), noNUL(r.Outcome)
	r.Hash = r.ComputeHash()
	r.MAC = ""
	if len(s.auditKey) > 0 {
		r.MAC = r.ComputeMAC(s.auditKey)
	}
	_, err = tx.Exec(ctx,
		"INSERT INTO audit(seq, time, actor, action, object, detail, outcome, prev_hash, hash, mac) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
		r.Seq, r.Time.Format(time.RFC3339Nano), r.Actor, r.Action, r.Object, r.Detail, r.Outcome, r.PrevHash, r.Hash, r.MAC)
	if err != nil {
		return vigil.AuditRecord{}, fmt.Errorf("cannot append audit record: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return vigil.AuditRecord{}, fmt.Errorf("cannot commit audit record: %w", err)
	}
	return r, nil
}

// ListAudit returns records with Seq > afterSeq in Seq order, at most
// limit of them (0: all).
func (s *Store) ListAudit(ctx context.Context, afterSeq int64, limit int) ([]vigil.AuditRecord, error) {
	if limit < 0 {
		return nil, vigil.Errorf(vigil.EINVALID, "audit limit %d is negative", limit)
	}
	q := "SELECT seq, time, actor, action, object, detail, outcome, prev_hash, hash, mac FROM audit WHERE seq > $1 ORDER BY seq"
	args := []any{afterSeq}
	if limit > 0 {
		q += " LIMIT $2"
		args = append(args, limit)
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot list audit records: %w", err)
	}
	defer rows.Close()
	var out []vigil.AuditRecord
	for rows.Next() {
		var (
			r  vigil.AuditRecord
			ts string
		)
		if err := rows.Scan(&r.Seq, &ts, &r.Actor, &r.Action, &r.Object, &r.Detail, &r.Outcome, &r.PrevHash, &r.Hash, &r.MAC); err != nil {
			return nil, fmt.Errorf("cannot read audit record: %w", err)
		}
		if r.Time, err = time.Parse(time.RFC3339Nano, ts); err != nil {
			return nil, fmt.Errorf("cannot read time of audit record %d: %w", r.Seq, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot list audit records: %w", err)
	}
	return out, nil
}

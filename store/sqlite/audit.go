package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-iot/vigil"
)

// AppendAudit appends r to the audit trail. In one write transaction it
// reads the last record, then assigns r's Seq, PrevHash and Hash and
// stores it, so concurrent appends (even from another process) keep one
// unbroken chain. With Options.AuditKey, the record is sealed (MAC) in
// the same transaction.
func (s *Store) AppendAudit(ctx context.Context, r vigil.AuditRecord) (vigil.AuditRecord, error) {
	tx, err := s.w.BeginTx(ctx, nil) // BEGIN IMMEDIATE: the write lock is taken before the read
	if err != nil {
		return vigil.AuditRecord{}, fmt.Errorf("cannot begin audit append: %w", err)
	}
	defer tx.Rollback()
	var (
		last     int64
		lastHash string
	)
	err = tx.QueryRowContext(ctx, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").Scan(&last, &lastHash)
	if err != nil && !isNoRows(err) {
		return vigil.AuditRecord{}, fmt.Errorf("cannot read the audit trail's last record: %w", err)
	}
	r.Time = r.Time.UTC()
	r.Seq = last + 1
	r.PrevHash = lastHash
	r.Hash = r.ComputeHash()
	r.MAC = ""
	if len(s.auditKey) > 0 {
		r.MAC = r.ComputeMAC(s.auditKey)
	}
	_, err = tx.ExecContext(ctx,
		"INSERT INTO audit(seq, time, actor, action, object, detail, outcome, prev_hash, hash, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		r.Seq, r.Time.Format(time.RFC3339Nano), r.Actor, r.Action, r.Object, r.Detail, r.Outcome, r.PrevHash, r.Hash, r.MAC)
	if err != nil {
		return vigil.AuditRecord{}, fmt.Errorf("cannot append audit record: %w", err)
	}
	if err := tx.Commit(); err != nil {
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
	q := "SELECT seq, time, actor, action, object, detail, outcome, prev_hash, hash, mac FROM audit WHERE seq > ? ORDER BY seq"
	args := []any{afterSeq}
	if limit > 0 {
		q += " LIMIT ?"
		args = append(args, limit)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
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

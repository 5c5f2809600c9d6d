package sqlite

import (
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

// TestAuditMigration opens a database of schema 1 holding a record
// written before outcomes and MACs: it keeps its hash, and the next record
// links to it and is sealed.
func TestAuditMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vigil.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(migrations[0]); err != nil {
		t.Fatal(err)
	}
	old := vigil.AuditRecord{Seq: 1, Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Actor: "alice", Action: "action.approve", Object: "action:a1"}
	old.Hash = old.ComputeHash()
	if _, err := db.Exec("INSERT INTO audit(seq, time, actor, action, object, detail, prev_hash, hash) VALUES (1, ?, ?, ?, ?, '', '', ?)",
		old.Time.Format(time.RFC3339Nano), old.Actor, old.Action, old.Object, old.Hash); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("PRAGMA user_version = 1"); err != nil {
		t.Fatal(err)
	}
	db.Close()

	key := []byte("k")
	s, err := Open(path, Options{AuditKey: key})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := s.AppendAudit(t.Context(), vigil.AuditRecord{Time: old.Time.Add(time.Second), Actor: "vigil", Action: "audit.seal", Object: "audit"})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := s.ListAudit(t.Context(), 0, 0)
	if err != nil || len(recs) != 2 {
		t.Fatalf("%+v %v", recs, err)
	}
	if recs[0].Hash != recs[0].ComputeHash() || recs[0].Hash != old.Hash || recs[0].MAC != "" || recs[0].Outcome != "" {
		t.Fatalf("the old record changed: %+v", recs[0])
	}
	if r.PrevHash != old.Hash || r.MAC != r.ComputeMAC(key) || recs[1] != r {
		t.Fatalf("the new record: %+v, listed %+v", r, recs[1])
	}
}

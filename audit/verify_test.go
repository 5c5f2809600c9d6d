package audit_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/audit"
	"github.com/vigil-iot/vigil/store/sqlite"
)

type fixedClock struct{ t time.Time }

func (c *fixedClock) Now() time.Time { c.t = c.t.Add(time.Second); return c.t }

// trail opens a real SQLite store with n records and returns it, the
// database path and a second raw handle on the same file for tampering.
func trail(t *testing.T, n int) (*sqlite.Store, *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vigil.db")
	st, err := sqlite.Open(path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rec := audit.NewRecorder(st, &fixedClock{t: time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC)}, nil)
	ctx := context.Background()
	for i := 1; i <= n; i++ {
		if _, err := rec.Record(ctx, "alice", audit.ActionApprove, fmt.Sprintf("action:a%d", i), "ok"); err != nil {
			t.Fatal(err)
		}
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return st, db
}

func verify(t *testing.T, st *sqlite.Store) audit.Report {
	t.Helper()
	rep, err := audit.Verify(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func exec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	res, err := db.Exec(q, args...)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("%s: %d rows affected, want 1", q, n)
	}
}

func TestVerifyIntact(t *testing.T) {
	st, _ := trail(t, 2500) // more than one page
	rep := verify(t, st)
	if !rep.OK || rep.Records != 2500 || rep.LastSeq != 2500 || rep.LastHash == "" {
		t.Fatalf("report %+v, want ok with 2500 records", rep)
	}
}

func TestVerifyEmpty(t *testing.T) {
	st, _ := trail(t, 0)
	if rep := verify(t, st); !rep.OK || rep.Records != 0 {
		t.Fatalf("report %+v, want ok and empty", rep)
	}
}

func TestVerifyDetectsTampering(t *testing.T) {
	f := func(name string, tamper func(db *sql.DB), seq int64, problem string, read int64) {
		t.Run(name, func(t *testing.T) {
			st, db := trail(t, 6)
			tamper(db)
			rep := verify(t, st)
			if rep.OK || rep.BadSeq != seq || rep.Problem != problem {
				t.Fatalf("report %+v, want seq %d %s", rep, seq, problem)
			}
			if rep.Records != read {
				t.Errorf("records %d read before the bad one, want %d", rep.Records, read)
			}
			t.Log(rep)
		})
	}
	f("edited detail", func(db *sql.DB) {
		exec(t, db, "UPDATE audit SET detail = 'denied' WHERE seq = 3")
	}, 3, audit.ProblemHash, 2)
	f("edited actor", func(db *sql.DB) {
		exec(t, db, "UPDATE audit SET actor = 'mallory' WHERE seq = 1")
	}, 1, audit.ProblemHash, 0)
	f("edited time", func(db *sql.DB) {
		exec(t, db, "UPDATE audit SET time = '2020-01-01T00:00:00Z' WHERE seq = 6")
	}, 6, audit.ProblemHash, 5)
	f("rehashed after edit", func(db *sql.DB) {
		// The attacker edits record 4 and recomputes its hash: record 5's
		// prev_hash no longer links.
		var r vigil.AuditRecord
		var ts string
		if err := db.QueryRow("SELECT seq, time, actor, action, object, detail, prev_hash FROM audit WHERE seq = 4").
			Scan(&r.Seq, &ts, &r.Actor, &r.Action, &r.Object, &r.Detail, &r.PrevHash); err != nil {
			t.Fatal(err)
		}
		r.Time, _ = time.Parse(time.RFC3339Nano, ts)
		r.Object = "action:other"
		exec(t, db, "UPDATE audit SET object = ?, hash = ? WHERE seq = 4", r.Object, r.ComputeHash())
	}, 5, audit.ProblemPrevHash, 4)
	f("deleted row", func(db *sql.DB) {
		exec(t, db, "DELETE FROM audit WHERE seq = 2")
	}, 3, audit.ProblemSeqGap, 1)
	f("deleted first row", func(db *sql.DB) {
		exec(t, db, "DELETE FROM audit WHERE seq = 1")
	}, 2, audit.ProblemSeqGap, 0)
}

func TestRecordJSON(t *testing.T) {
	st, _ := trail(t, 0)
	rec := audit.NewRecorder(st, nil, nil)
	r, err := rec.RecordJSON(context.Background(), "playbook:p", audit.ActionCreate, "action:x", map[string]string{"type": "isolate"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Seq != 1 || r.Detail != `{"type":"isolate"}` || r.Hash != r.ComputeHash() {
		t.Fatalf("record %+v", r)
	}
}

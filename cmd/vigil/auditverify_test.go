package main

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/audit"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/node"
)

// TestAuditVerifyOnlineAndOffline: `vigil audit verify` asks the running
// server, or reads a data dir; both find the newest records deleted
// (against the anchor) and a trail rewritten without the key.
func TestAuditVerifyOnlineAndOffline(t *testing.T) {
	cfg := node.DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.LogLevel = t.TempDir(), "127.0.0.1:0", "warn"
	cfg.SigmaDirs = []string{t.TempDir()}
	anchors := filepath.Join(t.TempDir(), "anchors.jsonl")
	cfg.Audit.Anchors.File = anchors
	cfg.Audit.AnchorInterval = node.Duration(100 * time.Millisecond)
	a := runTestApp(t, cfg)
	conn := []string{"--server", a.URL(), "--token", a.AdminToken(), "--ca", filepath.Join(a.Config().DataDir, "pki", "ca.crt")}
	admin, err := client.New(a.URL(), a.AdminToken(), client.TLSConfig(a.CAPool()))
	if err != nil {
		t.Fatal(err)
	}
	// Audited writes: five tokens made through the API.
	for i := range 5 {
		if _, err := admin.CreateToken(t.Context(), fmt.Sprintf("thing-%d", i), auth.RoleAnalyst); err != nil {
			t.Fatal(err)
		}
	}
	last, err := a.Store().ListAudit(t.Context(), 0, 1000)
	if err != nil || len(last) == 0 {
		t.Fatalf("audit records: %d %v", len(last), err)
	}
	// The node anchors the newest record within its anchor_interval.
	var an audit.Anchor
	deadline := time.Now().Add(20 * time.Second)
	for an.Seq < last[len(last)-1].Seq {
		if time.Now().After(deadline) {
			t.Fatalf("no anchor of seq %d in %s: last %+v", last[len(last)-1].Seq, anchors, an)
		}
		time.Sleep(50 * time.Millisecond)
		if f, err := os.Open(anchors); err == nil {
			an, _, _ = audit.ReadAnchors(f)
			f.Close()
		}
	}
	out, code := run(t, append([]string{"audit", "verify"}, conn...)...)
	if code != 0 || !strings.Contains(out, "sealed with the audit key") || !strings.Contains(out, fmt.Sprintf("anchor seq %d", an.Seq)) {
		t.Fatalf("online verify: exit %d\n%s", code, out)
	}
	out, code = run(t, "audit", "verify", "--data-dir", a.Config().DataDir, "--anchors", anchors)
	if code != 0 {
		t.Fatalf("offline verify: exit %d\n%s", code, out)
	}
	// A viewer may not verify.
	viewer, err := admin.CreateToken(t.Context(), "v", auth.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	if out, code := run(t, "audit", "verify", "--server", a.URL(), "--token", viewer.Secret, "--ca", conn[5]); code == 0 {
		t.Fatalf("a viewer verified: %s", out)
	}

	db, err := sql.Open("sqlite", filepath.Join(a.Config().DataDir, "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("DELETE FROM audit WHERE seq > ?", an.Seq-2); err != nil {
		t.Fatal(err)
	}
	out, code = run(t, append([]string{"audit", "verify", "-o", "json"}, conn...)...)
	if code != 1 || !strings.Contains(out, `"problem": "truncated"`) {
		t.Fatalf("online verify of a truncated trail: exit %d\n%s", code, out)
	}
	out, code = run(t, "audit", "verify", "--data-dir", a.Config().DataDir, "--anchors", anchors)
	if code != 1 || !strings.Contains(out, "truncated") {
		t.Fatalf("offline verify of a truncated trail: exit %d\n%s", code, out)
	}

	// Rewrite every row with recomputed plain hashes and no MAC.
	rows, err := db.Query("SELECT seq, time, actor, action, object, detail, outcome FROM audit ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	var recs []vigil.AuditRecord
	for rows.Next() {
		var r vigil.AuditRecord
		var ts string
		rows.Scan(&r.Seq, &ts, &r.Actor, &r.Action, &r.Object, &r.Detail, &r.Outcome)
		r.Time, _ = time.Parse(time.RFC3339Nano, ts)
		recs = append(recs, r)
	}
	rows.Close()
	prev := ""
	for _, r := range recs {
		r.PrevHash = prev
		r.Hash = r.ComputeHash()
		prev = r.Hash
		if _, err := db.Exec("UPDATE audit SET prev_hash = ?, hash = ?, mac = '' WHERE seq = ?", r.PrevHash, r.Hash, r.Seq); err != nil {
			t.Fatal(err)
		}
	}
	out, code = run(t, "audit", "verify", "--data-dir", a.Config().DataDir)
	if code != 1 || !strings.Contains(out, "unsealed") {
		t.Fatalf("offline verify of a rewritten trail: exit %d\n%s", code, out)
	}
}

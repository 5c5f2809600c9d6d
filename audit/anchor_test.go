package audit_test

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/audit"
	"github.com/vigil-iot/vigil/store/sqlite"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// keyedTrail opens a real SQLite store sealing with testKey, appends n
// records, and returns it with a raw handle on the file for tampering.
func keyedTrail(t *testing.T, n int) (*sqlite.Store, *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vigil.db")
	st, err := sqlite.Open(path, sqlite.Options{AuditKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	appendN(t, st, 0, n)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return st, db
}

func appendN(t *testing.T, st *sqlite.Store, from, n int) {
	t.Helper()
	rec := audit.NewRecorder(st, &fixedClock{t: time.Date(2026, 11, 22, 4, 0, from, 0, time.UTC)}, nil)
	for i := from + 1; i <= from+n; i++ {
		if _, err := rec.Record(context.Background(), "token:alice", "device.revoke", fmt.Sprintf("device:cam-%d", i), ""); err != nil {
			t.Fatal(err)
		}
	}
}

func verifyWith(t *testing.T, st *sqlite.Store, o audit.VerifyOptions) audit.Report {
	t.Helper()
	rep, err := audit.VerifyWith(context.Background(), st, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(rep)
	return rep
}

// rehash recomputes every row's hash (and prev_hash) from its content,
// as an attacker with write access to the database but not the key would
// after editing rows; mac is what the attacker writes in the mac column
// (nil: the old MACs are left in place).
func rehash(t *testing.T, db *sql.DB, edit func(r *vigil.AuditRecord), mac func(r vigil.AuditRecord) string) {
	t.Helper()
	rows, err := db.Query("SELECT seq, time, actor, action, object, detail, outcome, mac FROM audit ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	var recs []vigil.AuditRecord
	for rows.Next() {
		var r vigil.AuditRecord
		var ts string
		if err := rows.Scan(&r.Seq, &ts, &r.Actor, &r.Action, &r.Object, &r.Detail, &r.Outcome, &r.MAC); err != nil {
			t.Fatal(err)
		}
		r.Time, _ = time.Parse(time.RFC3339Nano, ts)
		recs = append(recs, r)
	}
	rows.Close()
	prev := ""
	for _, r := range recs {
		edit(&r)
		r.PrevHash = prev
		r.Hash = r.ComputeHash()
		prev = r.Hash
		m := r.MAC
		if mac != nil {
			m = mac(r)
		}
		if _, err := db.Exec("UPDATE audit SET actor = ?, object = ?, prev_hash = ?, hash = ?, mac = ? WHERE seq = ?",
			r.Actor, r.Object, r.PrevHash, r.Hash, m, r.Seq); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTruncationDetected deletes the newest records directly in SQLite:
// the chain that is left is intact, so Verify alone (all there was before
// anchors) says ok; the exported anchor names a record that is gone.
func TestTruncationDetected(t *testing.T) {
	st, db := keyedTrail(t, 8)
	file := filepath.Join(t.TempDir(), "anchors.jsonl")
	tr := audit.NewTrail(st, audit.TrailOptions{Key: testKey, Sinks: []audit.Sink{audit.FileSink{Path: file}}})
	if _, err := tr.Anchor(t.Context()); err != nil {
		t.Fatal(err)
	}
	appendN(t, st, 8, 4)
	a, err := tr.Anchor(t.Context())
	if err != nil || a.Seq != 12 {
		t.Fatalf("anchor %+v, %v; want seq 12", a, err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("anchor file: %v %v, want mode 0600", fi.Mode(), err)
	}

	if _, err := db.Exec("DELETE FROM audit WHERE seq > 9"); err != nil {
		t.Fatal(err)
	}
	if rep := verifyWith(t, st, audit.VerifyOptions{Key: testKey}); !rep.OK {
		t.Fatalf("without an anchor the truncated chain should still hold: %+v", rep)
	}
	last, ok, err := audit.ReadAnchorFile(file)
	if err != nil || !ok || last.Seq != 12 {
		t.Fatalf("anchor file's last anchor %+v %v %v", last, ok, err)
	}
	rep := verifyWith(t, st, audit.VerifyOptions{Key: testKey, Anchor: &last})
	if rep.OK || rep.Problem != audit.ProblemTruncated || rep.BadSeq != 12 || rep.LastSeq != 9 {
		t.Fatalf("report %+v, want truncated at seq 12 after seq 9", rep)
	}
	// The server's trail finds it too, and exports no anchor that would
	// bless the shorter trail, even once records are appended again.
	if rep, _ := tr.Verify(t.Context()); rep.Problem != audit.ProblemTruncated {
		t.Fatalf("server-side verify %+v", rep)
	}
	appendN(t, st, 100, 5) // other records where 10 to 12 were
	if _, err := tr.Anchor(t.Context()); err == nil || !strings.Contains(err.Error(), "rewritten") && !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("anchor over a truncated trail: %v", err)
	}
	if last, _, _ := audit.ReadAnchorFile(file); last.Seq != 12 {
		t.Fatalf("a new anchor was exported over the truncated trail: %+v", last)
	}
	// Everything deleted: still truncated.
	if _, err := db.Exec("DELETE FROM audit"); err != nil {
		t.Fatal(err)
	}
	if rep := verifyWith(t, st, audit.VerifyOptions{Key: testKey, Anchor: &last}); rep.Problem != audit.ProblemTruncated {
		t.Fatalf("empty trail: %+v", rep)
	}
}

// TestRewritingDetected rewrites every row and recomputes the chain, as
// someone who can write the database but does not hold the key would.
func TestRewritingDetected(t *testing.T) {
	f := func(name string, mac func(r vigil.AuditRecord) string, problem string, bad int64) {
		t.Run(name, func(t *testing.T) {
			st, db := keyedTrail(t, 6)
			rehash(t, db, func(r *vigil.AuditRecord) {
				if r.Seq == 3 {
					r.Actor = "token:mallory"
				}
			}, mac)
			if rep := verifyWith(t, st, audit.VerifyOptions{}); !rep.OK {
				t.Fatalf("the recomputed chain should hold without the key: %+v", rep)
			}
			rep := verifyWith(t, st, audit.VerifyOptions{Key: testKey})
			if rep.OK || rep.Problem != problem || rep.BadSeq != bad {
				t.Fatalf("report %+v, want %s at seq %d", rep, problem, bad)
			}
		})
	}
	// Plain hashes, no MAC at all.
	f("macs removed", func(vigil.AuditRecord) string { return "" }, audit.ProblemUnsealed, 6)
	// MACs removed from the rewritten records only: the first one is
	// unsealed after sealed ones.
	f("macs removed from the edit on", func(r vigil.AuditRecord) string {
		if r.Seq < 3 {
			return r.MAC
		}
		return ""
	}, audit.ProblemUnsealed, 3)
	// The old MACs left in place: they are MACs of other hashes.
	f("macs kept", nil, audit.ProblemMAC, 3)
	// A MAC made with another key.
	f("other key", func(r vigil.AuditRecord) string { return r.ComputeMAC([]byte("not the key")) }, audit.ProblemMAC, 1)
}

// TestSealLegacyTrail: records written before the key are vouched for by
// the seal record; rewriting one of them breaks the seal's MAC.
func TestSealLegacyTrail(t *testing.T) {
	st, db := trail(t, 5) // no key
	path := ""
	if err := db.QueryRow("PRAGMA database_list").Scan(new(int), new(string), &path); err != nil {
		t.Fatal(err)
	}
	st.Close()
	keyed, err := sqlite.Open(path, sqlite.Options{AuditKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	defer keyed.Close()
	tr := audit.NewTrail(keyed, audit.TrailOptions{Key: testKey})
	if rep, _ := tr.Verify(t.Context()); rep.Problem != audit.ProblemUnsealed {
		t.Fatalf("unsealed legacy trail with a key: %+v", rep)
	}
	if err := tr.Seal(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := tr.Seal(t.Context()); err != nil { // idempotent
		t.Fatal(err)
	}
	rep, _ := tr.Verify(t.Context())
	if !rep.OK || rep.Records != 6 || rep.Sealed != 1 || rep.Unsealed != 5 {
		t.Fatalf("sealed legacy trail: %+v", rep)
	}
	rehash(t, db, func(r *vigil.AuditRecord) {
		if r.Seq == 2 {
			r.Actor = "mallory"
		}
	}, func(r vigil.AuditRecord) string {
		if r.Seq == 6 {
			return r.ComputeMAC([]byte("guess"))
		}
		return ""
	})
	if rep, _ := tr.Verify(t.Context()); rep.Problem != audit.ProblemMAC || rep.BadSeq != 6 {
		t.Fatalf("rewritten legacy record: %+v", rep)
	}
}

func TestAnchorForged(t *testing.T) {
	st, _ := keyedTrail(t, 3)
	a := audit.Anchor{Time: time.Now(), Seq: 9, Hash: "ab", MAC: "cd"}
	rep := verifyWith(t, st, audit.VerifyOptions{Key: testKey, Anchor: &a})
	if rep.Problem != audit.ProblemAnchorInvalid {
		t.Fatalf("forged anchor: %+v", rep)
	}
	// A genuine anchor whose record was replaced.
	recs, _ := st.ListAudit(t.Context(), 0, 0)
	good := audit.AnchorOf(recs[1], time.Now())
	if rep := verifyWith(t, st, audit.VerifyOptions{Key: testKey, Anchor: &good}); !rep.OK {
		t.Fatalf("genuine anchor: %+v", rep)
	}
	other := recs[1]
	other.Detail = "x"
	other.Hash = other.ComputeHash()
	other.MAC = other.ComputeMAC(testKey)
	swapped := audit.AnchorOf(other, time.Now())
	if rep := verifyWith(t, st, audit.VerifyOptions{Key: testKey, Anchor: &swapped}); rep.Problem != audit.ProblemAnchorMismatch || rep.BadSeq != 2 {
		t.Fatalf("replaced record: %+v", rep)
	}
}

func TestReadAnchors(t *testing.T) {
	in := strings.Join([]string{
		`{"time":"2026-12-01T10:00:00Z","level":"INFO","msg":"request","status":200}`,
		`{"time":"2026-12-01T10:00:01Z","level":"INFO","msg":"audit anchor","component":"audit","seq":7,"hash":"h7","mac":"m7"}`,
		`<85>1 2026-12-01T10:00:02Z host vigil - audit-anchor - {"msg":"vigil audit anchor","time":"2026-12-01T10:00:02Z","seq":9,"hash":"h9","mac":"m9"}`,
		`{"seq":8,"hash":"h8","mac":"m8"}`,
		`time=2026-12-01T10:00:03.5Z level=INFO msg="audit anchor" component=audit seq=6 hash=h6 mac=m6`,
		`not json {`,
		``,
	}, "\n")
	a, ok, err := audit.ReadAnchors(strings.NewReader(in))
	if err != nil || !ok || a.Seq != 9 || a.Hash != "h9" || a.MAC != "m9" {
		t.Fatalf("%+v %v %v", a, ok, err)
	}
	a, ok, _ = audit.ReadAnchors(strings.NewReader(`time=2026-12-01T10:00:03.5Z level=INFO msg="audit anchor" component=audit seq=11 hash=h11 mac=m11` + "\n" + in))
	if !ok || a.Seq != 11 || a.MAC != "m11" || a.Time.IsZero() {
		t.Fatalf("text log line: %+v", a)
	}
	if _, ok, _ := audit.ReadAnchors(strings.NewReader("nothing\n")); ok {
		t.Fatal("found an anchor in nothing")
	}
}

// TestSinks exports an anchor to real listeners on loopback: syslog over
// UDP and TCP, and a webhook that checks the signature.
func TestSinks(t *testing.T) {
	st, _ := keyedTrail(t, 2)
	recs, _ := st.ListAudit(t.Context(), 0, 0)
	a := audit.AnchorOf(recs[1], time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	check := func(what, got string) {
		t.Helper()
		b, ok, _ := audit.ReadAnchors(strings.NewReader(got))
		if !ok || b.Seq != a.Seq || b.Hash != a.Hash || b.MAC != a.MAC || !b.Valid(testKey) {
			t.Fatalf("%s received %q", what, got)
		}
	}

	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if err := (audit.SyslogSink{Network: "udp", Addr: pc.LocalAddr().String(), Hostname: "vigil-1"}).Export(ctx, a); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	msg := string(buf[:n])
	if !strings.HasPrefix(msg, "<85>1 2026-12-01T10:00:00Z vigil-1 vigil - audit-anchor - ") {
		t.Fatalf("syslog udp: %q", msg)
	}
	check("syslog udp", msg)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var size int
		br := bufio.NewReader(c)
		if _, err := fmt.Fscanf(br, "%d ", &size); err != nil {
			got <- err.Error()
			return
		}
		b := make([]byte, size)
		_, err = io.ReadFull(br, b)
		got <- string(b) + fmt.Sprint(err)
	}()
	if err := (audit.SyslogSink{Network: "tcp", Addr: ln.Addr().String()}).Export(ctx, a); err != nil {
		t.Fatal(err)
	}
	check("syslog tcp", strings.TrimSuffix(<-got, "<nil>"))

	bodies := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		m := hmac.New(sha256.New, []byte("s3cret"))
		m.Write(b)
		if r.Header.Get("X-Vigil-Signature") != "sha256="+hex.EncodeToString(m.Sum(nil)) || r.Header.Get("Authorization") != "Bearer t" {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		bodies <- string(b)
	}))
	defer srv.Close()
	wh := &audit.WebhookSink{URL: srv.URL + "/anchors?token=x", Headers: map[string]string{"Authorization": "Bearer t"}, Secret: "s3cret"}
	if err := wh.Export(ctx, a); err != nil {
		t.Fatal(err)
	}
	check("webhook", <-bodies)
	if strings.Contains(wh.Name(), "token") {
		t.Fatalf("sink name %q shows the query", wh.Name())
	}
	bad := &audit.WebhookSink{URL: srv.URL, Secret: "wrong"}
	if err := bad.Export(ctx, a); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("webhook refusal: %v", err)
	}
}

func TestKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pki", audit.KeyFile)
	if _, err := audit.LoadKey(path); err == nil {
		t.Fatal("LoadKey made a key")
	}
	k, err := audit.EnsureKey(path)
	if err != nil || len(k) != 32 {
		t.Fatalf("%d %v", len(k), err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
	k2, err := audit.EnsureKey(path)
	if err != nil || string(k2) != string(k) {
		t.Fatal("the key changed on the second start")
	}
	os.Chmod(path, 0o644)
	if _, err := audit.LoadKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable key: %v", err)
	}
	os.Chmod(path, 0o600)
	os.WriteFile(path, []byte("secret-not-hex\n"), 0o600)
	if _, err := audit.LoadKey(path); err == nil || strings.Contains(err.Error(), "secret-not-hex") {
		t.Fatalf("a bad key: %v", err)
	}
}

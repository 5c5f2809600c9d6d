package main

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/enroll"
	"github.com/vigil-iot/vigil/node"
	"github.com/vigil-iot/vigil/update/repo"
)

// TestUpdateRepoCLI runs a node whose config names a repository served
// on loopback (allowed by outbound.allow): the periodic job stores its
// artifact, signed with the update key; a second artifact published
// later is stored by `vigil update repo sync`, which is audited, and
// `vigil update repo list` shows the last sync.
func TestUpdateRepoCLI(t *testing.T) {
	var mu sync.Mutex
	files := map[string][]byte{"fw-1.bin": []byte("firmware one")}
	entry := func(name, version string) repo.Entry {
		h := sha256.Sum256(files[name])
		return repo.Entry{Name: name, Product: "acme-fw", Version: version, URL: "files/" + name, SHA256: hex.EncodeToString(h[:]), Size: int64(len(files[name]))}
	}
	ix := repo.Index{Artifacts: []repo.Entry{entry("fw-1.bin", "1.0")}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path == "/index.json" {
			json.NewEncoder(w).Encode(ix)
			return
		}
		if b, ok := files[strings.TrimPrefix(r.URL.Path, "/files/")]; ok {
			w.Write(b)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()

	cfg := node.DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.LogLevel = t.TempDir(), "127.0.0.1:0", "warn"
	cfg.SigmaDirs = []string{t.TempDir()}
	cfg.Outbound.Allow = []string{"127.0.0.1"}
	cfg.Update.Repositories = []node.RepositoryConfig{{Name: "acme", URL: srv.URL + "/index.json"}}
	a := runTestApp(t, cfg)
	conn := []string{"--server", a.URL(), "--token", a.AdminToken(), "--ca", filepath.Join(a.Config().DataDir, "pki", "ca.crt")}
	key, err := enroll.EnsureUpdateKey(filepath.Join(a.Config().DataDir, "pki", enroll.UpdateKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)

	ctx := t.Context()
	deadline := time.Now().Add(10 * time.Second)
	for {
		as, err := a.Store().ListArtifacts(ctx, "acme-fw")
		if err != nil {
			t.Fatal(err)
		}
		if len(as) == 1 {
			if as[0].CreatedBy != "repository:acme" {
				t.Errorf("stored %+v", as[0])
			}
			if err := command.VerifyArtifact(pub, files["fw-1.bin"], as[0].SHA256, as[0].Signature); err != nil {
				t.Errorf("the fetched artifact does not verify with the update key: %v", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the periodic job stored nothing: %+v", as)
		}
		time.Sleep(50 * time.Millisecond)
	}

	mu.Lock()
	files["fw-2.bin"] = []byte("firmware two")
	ix.Artifacts = append(ix.Artifacts, entry("fw-2.bin", "2.0"))
	mu.Unlock()
	out, code := run(t, append([]string{"update", "repo", "sync", "acme", "-o", "json"}, conn...)...)
	var rs []repo.Result
	if code != 0 || json.Unmarshal([]byte(out), &rs) != nil || len(rs) != 1 || len(rs[0].Added) != 1 || rs[0].Present != 1 || rs[0].Added[0].Version != "2.0" {
		t.Fatalf("sync: exit %d: %s", code, out)
	}
	if err := command.VerifyArtifact(pub, files["fw-2.bin"], rs[0].Added[0].SHA256, rs[0].Added[0].Signature); err != nil {
		t.Error(err)
	}
	if out, code := run(t, append([]string{"update", "repo", "sync"}, conn...)...); code != 0 || !strings.Contains(out, "2 already stored") {
		t.Errorf("sync all: exit %d: %s", code, out)
	}
	if out, code := run(t, append([]string{"update", "repo", "sync", "nope"}, conn...)...); code == 0 || !strings.Contains(out, "no such repository") {
		t.Errorf("sync of an unknown repository: exit %d: %s", code, out)
	}
	if out, code := run(t, append([]string{"update", "repo", "list"}, conn...)...); code != 0 || !strings.Contains(out, "acme") || !strings.Contains(out, "1h0m0s") {
		t.Errorf("list: exit %d: %s", code, out)
	}
	recs, err := a.Store().ListAudit(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var synced []string
	fetched := 0
	for _, r := range recs {
		if r.Action == "update_repository.sync" {
			synced = append(synced, r.Object+" "+r.Detail+" "+r.Outcome)
		}
		if r.Action == repo.AuditFetch && r.Actor == "repository:acme" && strings.HasPrefix(r.Object, "artifact:") {
			fetched++
		}
	}
	if fetched != 2 {
		t.Errorf("%d fetched artifacts audited, want 2", fetched)
	}
	if len(synced) != 3 || !strings.Contains(synced[0], "repository:acme added=1 refused=0") {
		t.Errorf("audit records of the syncs: %q", synced)
	}
}

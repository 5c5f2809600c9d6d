package web

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/web/api"
)

// TestUpdateArtifacts: an admin uploads an artifact, the server keeps its
// bytes, hash and update-key signature (which the agent-side check
// accepts), lists, serves the public key and removes it; analysts read
// but cannot add or remove; every change is audited.
func TestUpdateArtifacts(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	var e *env
	e = newEnv(t, func(o *Options) {
		o.Extra = UpdateRoutes(&Updates{Store: o.Store, Key: key, Clock: fixedClock(now)})
	})
	fw := "\x7fELF camera firmware 2.1.0\x00\xff"
	code, body, _ := e.do("POST", PathArtifacts+"?product=camfw&version=2.1.0&class=camera&model=IPC-1&name=/tmp/fw.bin", string(auth.RoleAdmin), fw)
	if code != http.StatusCreated {
		t.Fatalf("add: %d %s", code, body)
	}
	var a vigil.Artifact
	json.Unmarshal(body, &a)
	if a.Product != "camfw" || a.Version != "2.1.0" || a.Name != "fw.bin" || a.Size != int64(len(fw)) ||
		strings.Join(a.Classes, ",") != "camera" || a.CreatedBy != "token:test-admin" || !a.Created.Equal(now) {
		t.Fatalf("added %+v", a)
	}
	data, err := e.store.ArtifactData(context.Background(), a.ID)
	if err != nil || string(data) != fw {
		t.Fatalf("stored bytes %q %v", data, err)
	}
	if err := command.VerifyArtifact(pub, data, a.SHA256, a.Signature); err != nil {
		t.Fatalf("the agent would refuse it: %v", err)
	}

	if code, body, _ := e.do("POST", PathArtifacts+"?product=camfw&version=2.2", string(auth.RoleAnalyst), fw); code != http.StatusForbidden {
		t.Errorf("analyst add: %d %s", code, body)
	}
	for q, want := range map[string]string{
		"?version=1":                           "product",
		"?product=camfw&version=1&class=a%20b": "class",
		"?product=camfw&version=":              "version",
	} {
		if code, body, _ := e.do("POST", PathArtifacts+q, string(auth.RoleAdmin), fw); code != http.StatusBadRequest || !strings.Contains(string(body), want) {
			t.Errorf("add %s: %d %s, want 400 about %s", q, code, body, want)
		}
	}
	if code, body, _ := e.do("POST", PathArtifacts+"?product=p&version=1", string(auth.RoleAdmin), ""); code != http.StatusBadRequest {
		t.Errorf("empty add: %d %s", code, body)
	}

	var l api.List[vigil.Artifact]
	e.get(PathArtifacts+"?product=camfw", http.StatusOK, &l)
	if len(l.Items) != 1 || l.Items[0].ID != a.ID {
		t.Fatalf("list: %+v", l)
	}
	var k UpdateKeyInfo
	e.get(PathUpdateKey, http.StatusOK, &k)
	if k.PublicKey != base64.StdEncoding.EncodeToString(pub) {
		t.Fatalf("key %q", k.PublicKey)
	}

	if code, _, _ := e.do("DELETE", PathArtifacts+"/"+a.ID, string(auth.RoleAnalyst), ""); code != http.StatusForbidden {
		t.Errorf("analyst remove: %d", code)
	}
	if code, body, _ := e.do("DELETE", PathArtifacts+"/"+a.ID, string(auth.RoleAdmin), ""); code != http.StatusNoContent {
		t.Fatalf("remove: %d %s", code, body)
	}
	e.get(PathArtifacts+"/"+a.ID, http.StatusNotFound, nil)

	recs, _ := e.store.ListAudit(context.Background(), 0, 0)
	var got []string
	for _, r := range recs {
		if strings.HasPrefix(r.Action, "update_artifact.") {
			got = append(got, r.Action+" "+r.Object+" "+r.Outcome)
		}
	}
	// The add and the remove, and the six refused or denied attempts.
	if len(got) != 8 || got[0] != "update_artifact.add artifact:"+a.ID+" ok" || got[7] != "update_artifact.remove artifact:"+a.ID+" ok" {
		t.Fatalf("audit: %q", got)
	}
}

package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/agent/command"
	"github.com/vigil-iot/vigil/enroll"
)

// TestUpdateArtifactCLI adds, lists and removes an artifact through `vigil
// update` against a served app: the artifact is signed with the update key
// in pki/update.key, which is not the command key.
func TestUpdateArtifactCLI(t *testing.T) {
	a := startTestApp(t)
	conn := []string{"--server", a.URL(), "--token", a.AdminToken(), "--ca", filepath.Join(a.Config().DataDir, "pki", "ca.crt")}
	fw := filepath.Join(t.TempDir(), "camfw-2.1.0.bin")
	os.WriteFile(fw, []byte("\x7fELF firmware\x00"), 0o600)

	out, code := run(t, append([]string{"update", "artifact", "add", fw, "--product", "camfw", "--version", "2.1.0", "--class", "camera", "-o", "json"}, conn...)...)
	var art vigil.Artifact
	if code != 0 || json.Unmarshal([]byte(out), &art) != nil || art.Name != "camfw-2.1.0.bin" {
		t.Fatalf("add: exit %d: %s", code, out)
	}
	key, err := enroll.EnsureUpdateKey(filepath.Join(a.Config().DataDir, "pki", enroll.UpdateKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)
	if err := command.VerifyArtifact(pub, []byte("\x7fELF firmware\x00"), art.SHA256, art.Signature); err != nil {
		t.Fatal(err)
	}
	if err := command.VerifyArtifact(a.CommandPublicKey(), []byte("\x7fELF firmware\x00"), art.SHA256, art.Signature); err == nil {
		t.Fatal("the artifact verifies with the command key")
	}
	if out, code := run(t, append([]string{"update", "key"}, conn...)...); code != 0 || strings.TrimSpace(out) != base64.StdEncoding.EncodeToString(pub) {
		t.Fatalf("key: exit %d: %s", code, out)
	}
	if out, code := run(t, append([]string{"update", "artifact", "list"}, conn...)...); code != 0 || !strings.Contains(out, art.ID) || !strings.Contains(out, "camera") {
		t.Fatalf("list: exit %d: %s", code, out)
	}
	if out, code := run(t, append([]string{"update", "artifact", "add", fw, "--version", "1"}, conn...)...); code == 0 || !strings.Contains(out, "product") {
		t.Fatalf("add without product: exit %d: %s", code, out)
	}
	if out, code := run(t, append([]string{"update", "artifact", "remove", art.ID}, conn...)...); code != 0 {
		t.Fatalf("remove: exit %d: %s", code, out)
	}
	if out, code := run(t, append([]string{"update", "artifact", "list", "-o", "json"}, conn...)...); code != 0 || strings.Contains(out, art.ID) {
		t.Fatalf("list after remove: exit %d: %s", code, out)
	}
}

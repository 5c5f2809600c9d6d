package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/web/api"
)

// TestCtlTokens drives `vigil ctl token create|list|revoke` against a
// running server through its API, configured by VIGIL_SERVER, VIGIL_TOKEN
// and VIGIL_CA as a user would: a token with a ttl and a device binding
// is created, listed with its expiry and devices, works, and stops working
// once revoked. A --data-dir that is not a Vigil data dir is refused and
// not created.
func TestCtlTokens(t *testing.T) {
	a := startTestApp(t)
	t.Setenv("VIGIL_SERVER", a.URL())
	t.Setenv("VIGIL_TOKEN", a.AdminToken())
	t.Setenv("VIGIL_CA", filepath.Join(a.Config().DataDir, "pki", "ca.crt"))

	out, code := run(t, "ctl", "token", "create", "--role", "agent", "--name", "cams", "--ttl", "720h", "--device", "cam-1", "--device", "cam-2", "-o", "json")
	if code != 0 {
		t.Fatalf("token create: exit %d\n%s", code, out)
	}
	var ct api.CreatedToken
	if err := json.Unmarshal([]byte(out), &ct); err != nil || ct.Secret == "" || ct.Expires.IsZero() || !slices.Equal(ct.Devices, []string{"cam-1", "cam-2"}) {
		t.Fatalf("token create -o json: %v\n%s", err, out)
	}
	out, code = run(t, "ctl", "token", "list")
	if code != 0 || !strings.Contains(out, "EXPIRES") || !strings.Contains(out, "cam-1,cam-2") || !strings.Contains(out, "in 7") {
		t.Fatalf("token list: exit %d\n%s", code, out)
	}

	// The bound token posts for its devices only.
	c, err := client.New(a.URL(), ct.Secret, client.TLSConfig(a.CAPool()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	line := `{"time":"2026-01-02T03:04:05Z","device_id":"cam-1","kind":"auth"}` + "\n" + `{"time":"2026-01-02T03:04:05Z","device_id":"cam-9","kind":"auth"}` + "\n"
	if res, err := c.PostEvents(t.Context(), []byte(line)); err != nil || res.Accepted != 1 || res.RejectedCount != 1 {
		t.Fatalf("bound token post: %+v %v", res, err)
	}

	if out, code := run(t, "ctl", "token", "revoke", "cams"); code != 0 || !strings.Contains(out, "revoked cams") {
		t.Fatalf("token revoke: exit %d\n%s", code, out)
	}
	if _, err := c.PostEvents(t.Context(), []byte(line)); vigil.ErrorCode(err) != vigil.EUNAUTHORIZED {
		t.Fatalf("a revoked token posts: %v", err)
	}
	if out, _ := run(t, "ctl", "token", "list", "-o", "json"); strings.Contains(out, `"cams"`) {
		t.Fatalf("the revoked token is listed:\n%s", out)
	}
	if out, code := run(t, "ctl", "token", "revoke", "cams"); code == 0 {
		t.Fatalf("revoking an unknown token succeeded:\n%s", out)
	}

	// A wrong --data-dir is refused, not created.
	missing := filepath.Join(t.TempDir(), "vigil-data")
	if out, code := run(t, "ctl", "token", "create", "--data-dir", missing); code == 0 || !strings.Contains(out, "does not exist") {
		t.Fatalf("token create --data-dir of nothing: exit %d\n%s", code, out)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Fatalf("token create made %s: %v", missing, err)
	}
	// So is a directory that exists but holds no Vigil data.
	if out, code := run(t, "ctl", "token", "create", "--data-dir", t.TempDir()); code == 0 || !strings.Contains(out, "not a Vigil data dir") {
		t.Fatalf("token create --data-dir of an empty dir: exit %d\n%s", code, out)
	}
	// The server's own data dir works offline.
	out, code = run(t, "ctl", "token", "create", "--role", "viewer", "--ttl", "1h", "--data-dir", a.Config().DataDir)
	if code != 0 {
		t.Fatalf("token create --data-dir: exit %d\n%s", code, out)
	}
	vc, _ := client.New(a.URL(), strings.TrimSpace(out), client.TLSConfig(a.CAPool()))
	defer vc.Close()
	if _, _, err := vc.ListDevices(t.Context(), store.DeviceFilter{}); err != nil {
		t.Fatalf("a viewer token made offline: %v", err)
	}
}

package web

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil/detect/reload"
	"github.com/vigil-iot/vigil/detect/sigma"
)

// testRules is a real rule manager over one rule in a temp dir.
func testRules(t testing.TB) *reload.Manager {
	t.Helper()
	dir := t.TempDir()
	rule := "title: Wget run\nid: 22222222-2222-4222-8222-222222222222\ntags: [attack.t1105]\n" +
		"logsource: {product: linux, category: process_creation}\n" +
		"detection:\n  sel: {process.command_line|contains: wget}\n  condition: sel\nlevel: high\n"
	if err := os.WriteFile(filepath.Join(dir, "r.yml"), []byte(rule), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := reload.Options{Dirs: []string{dir}}
	rs, res := reload.Load(opts)
	return reload.New(sigma.NewDetector(rs, sigma.DetectorOptions{}), opts, res)
}

func TestRulesEndpoints(t *testing.T) {
	e := newEnv(t, nil)
	code, body, _ := e.do("GET", "/api/v1/rules", "viewer", "")
	if code != http.StatusOK {
		t.Fatalf("list: %d %s", code, body)
	}
	var l RuleList
	if err := json.Unmarshal(body, &l); err != nil || len(l.Items) != 1 || !l.Items[0].Enabled {
		t.Fatalf("list: %s (%v)", body, err)
	}
	code, body, _ = e.do("POST", "/api/v1/rules/disable", "analyst", `{"selector":"attack.t1105"}`)
	if code != http.StatusOK || !strings.Contains(string(body), `"changed":1`) {
		t.Fatalf("disable: %d %s", code, body)
	}
	if code, body, _ = e.do("POST", "/api/v1/rules/enable", "analyst", `{"selector":"no-such-rule"}`); code != http.StatusNotFound {
		t.Fatalf("enable of an unknown rule: %d %s", code, body)
	}
	if code, body, _ = e.do("POST", "/api/v1/rules/enable", "analyst", `{}`); code != http.StatusBadRequest {
		t.Fatalf("enable without selector: %d %s", code, body)
	}
	code, body, _ = e.do("POST", "/api/v1/rules/reload", "admin", "")
	if code != http.StatusOK || !strings.Contains(string(body), `"compiled":1`) {
		t.Fatalf("reload: %d %s", code, body)
	}
	_, body, _ = e.do("GET", "/api/v1/rules", "viewer", "")
	json.Unmarshal(body, &l)
	if l.Items[0].Enabled {
		t.Error("a rule disabled by tag is enabled again after reload")
	}
	recs, err := e.store.ListAudit(t.Context(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, r := range recs {
		actions = append(actions, r.Action)
	}
	if got := strings.Join(actions, ","); !strings.Contains(got, "rules.disable") || !strings.Contains(got, "rules.reload") {
		t.Errorf("audit trail %q lacks the rule changes", got)
	}
}

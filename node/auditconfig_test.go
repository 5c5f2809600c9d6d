package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil/audit"
	"github.com/vigil-iot/vigil/store/sqlite"
)

// TestAuditConfigChanges: the first start and each changed restart are
// audited with the keys that changed; an unchanged restart is not.
func TestAuditConfigChanges(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	st, err := sqlite.Open(filepath.Join(cfg.DataDir, "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rec := audit.NewRecorder(st, nil, nil)
	cfg.Response.MQTT = &MQTTConfig{Broker: "tcp://127.0.0.1:1883", Username: "admin", Password: "hunter2"}
	for range 2 {
		if err := auditConfigChange(t.Context(), cfg, rec); err != nil {
			t.Fatal(err)
		}
	}
	cfg.LogLevel = "debug"
	if err := auditConfigChange(t.Context(), cfg, rec); err != nil {
		t.Fatal(err)
	}
	recs, _ := st.ListAudit(t.Context(), 0, 0)
	if len(recs) != 2 || !strings.Contains(recs[0].Detail, `"first":true`) || !strings.Contains(recs[1].Detail, `"changed":["log_level"]`) {
		t.Fatalf("config audit records: %+v", recs)
	}
	for _, r := range recs {
		if strings.Contains(r.Detail, "hunter2") {
			t.Fatalf("a password reached the audit trail: %s", r.Detail)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(cfg.DataDir, appliedConfigFile)); strings.Contains(string(b), "hunter2") {
		t.Fatalf("a password was written to %s", appliedConfigFile)
	}
}

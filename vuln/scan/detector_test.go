package scan

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

// TestDetectorKeepsFindingsOnInterfaceOnlyInventory: an agent's inventory
// event that carries only network interfaces (its software list is sent
// when it changes) keeps the device's findings; a software list with the
// fixed version drops them.
func TestDetectorKeepsFindingsOnInterfaceOnlyInventory(t *testing.T) {
	db, _, _ := open(t)
	mustImport(t, db, heartbeat, ImportOptions{}, 1)
	det := NewDetector(db)
	at := time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)
	inv := func(id string, fields map[string]any) {
		det.Detect(context.Background(), 0, &vigil.Event{ID: id, Time: at, DeviceID: "cam-1", Source: "agent", Kind: vigil.KindInventory, Fields: fields}, nil)
	}
	sw := func(v string) string {
		return `[{"name":"openssl","version":"` + v + `","type":"package","source":"dpkg","purl":"pkg:deb/openssl@` + v + `"}]`
	}
	inv("i1", map[string]any{"os.name": "Debian GNU/Linux", "os.version": "7 (wheezy)", "software": sw("1.0.1e-2+deb7u4")})
	if fs := db.Findings(Filter{DeviceID: "cam-1"}); len(fs) != 1 {
		t.Fatalf("findings %+v", fs)
	}
	inv("i2", map[string]any{"network.interfaces": `[{"interface":"eth0"}]`})
	if fs := db.Findings(Filter{DeviceID: "cam-1"}); len(fs) != 1 {
		t.Fatalf("an interface-only inventory changed the findings: %+v", fs)
	}
	inv("i3", map[string]any{"os.name": "Debian GNU/Linux", "os.version": "7 (wheezy)", "software": sw("1.0.1e-2+deb7u5")})
	if fs := db.Findings(Filter{DeviceID: "cam-1"}); len(fs) != 0 {
		t.Fatalf("after the fix: %+v", fs)
	}
}

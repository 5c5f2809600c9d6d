package enroll

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil/agent"
	"github.com/vigil-iot/vigil/audit"
	"github.com/vigil-iot/vigil/store/sqlite"
)

// TestDeviceSideAudited: what does not go through an API route leaves a
// record too: a device enrolling with a one-time token, a device renewing
// its certificate, and every command queued (here as a playbook would,
// through Send).
func TestDeviceSideAudited(t *testing.T) {
	f := newFixture(t, false)
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f.h.opts.Audit = audit.NewRecorder(st, nil, nil)

	state := t.TempDir()
	id := f.enroll(t, state)
	id2, err := agent.LoadIdentity(state)
	if err != nil {
		t.Fatal(err)
	}
	if err := id2.Renew(context.Background(), newTestClient(id2), f.srv.URL); err != nil {
		t.Fatal(err)
	}
	c, err := f.h.Send(id.DeviceID, "isolate", map[string]string{"mode": "full"}, 0)
	if err != nil {
		t.Fatal(err)
	}

	recs, err := st.ListAudit(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3: %+v", len(recs), recs)
	}
	dev := "device:" + id.DeviceID
	check := func(i int, actorPrefix, action string, detail ...string) {
		t.Helper()
		r := recs[i]
		if !strings.HasPrefix(r.Actor, actorPrefix) || r.Action != action || r.Object != dev {
			t.Errorf("record %d = %s %s %s, want %s* %s %s", r.Seq, r.Actor, r.Action, r.Object, actorPrefix, action, dev)
		}
		for _, d := range detail {
			if !strings.Contains(r.Detail, d) {
				t.Errorf("record %d detail %s lacks %s", r.Seq, r.Detail, d)
			}
		}
		if strings.Contains(r.Detail, TokenPrefix) {
			t.Errorf("record %d detail %s holds a token", r.Seq, r.Detail)
		}
	}
	check(0, "enroll-token:", "device.enroll", `"class":"camera"`, `"serial"`)
	check(1, dev, "device.renew", `"serial"`)
	check(2, "vigil", "command.queue", `"command":"`+c.ID+`"`, `"action":"isolate"`, `"mode":"full"`)
}

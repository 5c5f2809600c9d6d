package ids

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

func TestDetect(t *testing.T) {
	at := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	nw := &vigil.Network{Transport: "tcp", SrcIP: netip.MustParseAddr("192.168.2.14"), SrcPort: 50096, DstIP: netip.MustParseAddr("209.53.113.5"), DstPort: 80}
	run := func(ev vigil.Event) []vigil.Alert {
		var out []vigil.Alert
		New().Detect(context.Background(), 0, &ev, func(a vigil.Alert) { out = append(out, a) })
		return out
	}
	// A Suricata alert, as ingest/suricata makes it.
	got := run(vigil.Event{ID: "e1", Time: at, Source: "sensor", Kind: "alert", Action: "alert", Severity: vigil.SeverityMedium, Network: nw,
		Fields: map[string]any{"observer.product": "suricata", "flow.id": "0002156a83911a4f", "alert.signature_id": 2018358.0, "alert.gid": 1.0,
			"alert.signature": "ET HUNTING GENERIC SUSPICIOUS POST to Dotted Quad with Fake Browser 1", "alert.category": "Potentially Bad Traffic", "alert.severity": 2.0}})
	if len(got) != 1 {
		t.Fatalf("%d alerts", len(got))
	}
	a := got[0]
	if a.RuleID != "suricata:1:2018358" || a.Title != "ET HUNTING GENERIC SUSPICIOUS POST to Dotted Quad with Fake Browser 1" ||
		a.Severity != vigil.SeverityMedium || a.Detector != "ids" || a.EventIDs[0] != "e1" ||
		len(a.Entities) != 2 || a.Entities[0] != "ip:192.168.2.14" || a.Fields["alert.category"] != "Potentially Bad Traffic" ||
		a.Fields["flow.id"] != "0002156a83911a4f" || a.DedupKey != "ids|suricata:1:2018358||192.168.2.14>209.53.113.5" {
		t.Errorf("%+v", a)
	}
	// A Zeek notice.
	got = run(vigil.Event{ID: "e2", Time: at, Source: "sensor", Kind: "alert", Action: "notice", Severity: vigil.SeverityMedium, Network: nw,
		Fields: map[string]any{"observer.product": "zeek", "alert.signature": "SSL::Invalid_Server_Cert", "alert.message": "certificate expired"}})
	if len(got) != 1 || got[0].RuleID != "zeek:SSL::Invalid_Server_Cert" || got[0].Title != "SSL::Invalid_Server_Cert: certificate expired" {
		t.Errorf("%+v", got)
	}
	// Not alerts.
	if got := run(vigil.Event{Kind: "flow", Fields: map[string]any{"alert.signature": "x"}}); len(got) != 0 {
		t.Errorf("a flow raised %+v", got)
	}
	if got := run(vigil.Event{Kind: "alert"}); len(got) != 0 {
		t.Errorf("an alert event without a signature raised %+v", got)
	}
}

package investigate

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

// TestReach counts the incident's device and the devices of its blast
// radius scoring at least ReachScore (cam-2, plc-1, cam-3, plc-2; not
// gw-1 nor therm-1), answers from its cache within the refresh, and
// follows a new reach after it.
func TestReach(t *testing.T) {
	iv, st := scenario(t)
	r := iv.Reach(time.Minute)
	inc, err := st.GetIncident(t.Context(), "inc-1")
	if err != nil {
		t.Fatal(err)
	}
	n, why, err := r.Devices(t.Context(), &inc)
	if err != nil || n != 5 || !strings.Contains(why, "1 in the incident, 4 more") {
		t.Fatalf("reach: %d %q %v, want 5", n, why, err)
	}
	// cam-1 now reaches therm-1 (3 + 10 for "reached").
	ev := vigil.Event{ID: "late", Time: t0.Add(time.Minute), DeviceID: "cam-1", Kind: vigil.KindNetwork, Action: "connect",
		Network: &vigil.Network{SrcIP: netip.MustParseAddr("10.0.0.5"), DstIP: netip.MustParseAddr("10.0.0.7")}}
	if err := st.PutGraph(t.Context(), newBatch(&ev)); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := r.Devices(t.Context(), &inc); n != 5 {
		t.Errorf("within the refresh: %d, want the cached 5", n)
	}
	iv.clock = fixedClock(t0.Add(time.Hour + 2*time.Minute))
	if n, _, _ := r.Devices(t.Context(), &inc); n != 6 {
		t.Errorf("after the refresh: %d, want 6 (therm-1 reached)", n)
	}
	if _, _, err := r.Devices(t.Context(), &vigil.Incident{ID: "nope", Detected: t0}); err != nil {
		t.Errorf("an incident not stored yet is measured from what it names: %v", err)
	}
}

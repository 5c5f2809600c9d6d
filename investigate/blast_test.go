package investigate

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

func TestBlastRadius(t *testing.T) {
	iv, _ := scenario(t)
	br, err := iv.BlastRadius(t.Context(), "inc-1")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, im := range br.Items {
		var codes []string
		for _, r := range im.Reasons {
			codes = append(codes, r.Code)
		}
		got = append(got, fmt.Sprintf("%s %s %g %s", im.Entity, im.Device, im.Score, strings.Join(codes, ",")))
	}
	want := []string{
		"device:cam-2 cam-2 23 same_source,same_account,same_subnet,same_software,same_vulnerability",
		"device:plc-1 plc-1 11 reached,same_subnet",
		"mqtt.topic:plant/valves/set  10 reached",
		"device:cam-3 cam-3 7 same_account",
		"device:plc-2 plc-2 7 mqtt_topic",
		"device:gw-1 gw-1 4 same_gateway,same_subnet",
		"device:therm-1 therm-1 3 same_subnet,same_software",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("blast radius:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if br.Total != len(want) || !br.Since.Equal(t0) || !slices.Equal(br.Compromised, []string{"cam-1"}) {
		t.Errorf("total %d since %v compromised %v", br.Total, br.Since, br.Compromised)
	}
	// Every reason cites its evidence: graph relations with their events,
	// or the shared vulnerabilities.
	for _, im := range br.Items {
		for _, r := range im.Reasons {
			switch {
			case r.Code == ReasonVulnerable:
				if !slices.Equal(r.Vulns, []string{"CVE-2016-2148"}) || !strings.Contains(r.Detail, "known exploited") {
					t.Errorf("%s: vulnerability reason %+v", im.Entity, r)
				}
			case r.Code == ReasonSameSoftware:
				if im.Device == "cam-2" && r.Detail != "cam-2 runs what a compromised device runs: firmware Hikvision DS-2CD2032 5.4.0, busybox 1.24.1, lighttpd 1.4.35" ||
					im.Device == "therm-1" && r.Detail != "therm-1 runs what a compromised device runs: busybox 1.24.1" {
					t.Errorf("%s: %s", im.Device, r.Detail)
				}
			case r.Code == ReasonSubnet || r.Code == ReasonGateway:
			default:
				if len(r.Relations) == 0 || r.Relations[0].LastEvent == "" {
					t.Errorf("%s: %s has no relation citing events: %+v", im.Entity, r.Code, r)
				}
			}
		}
	}
	// The reach to plc-1 names its address and the event that showed it.
	plc := br.Items[1]
	if !strings.Contains(plc.Reasons[0].Detail, "10.0.0.9 is an address of plc-1") {
		t.Errorf("plc-1 reason: %s", plc.Reasons[0].Detail)
	}
	if _, err := iv.BlastRadius(t.Context(), "nope"); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Errorf("unknown incident: %v", err)
	}
}

// TestBlastRadiusFollowsNewEvents checks that the radius is computed on
// request: a device reached after the first answer appears in the next.
func TestBlastRadiusFollowsNewEvents(t *testing.T) {
	iv, st := scenario(t)
	ev := vigil.Event{ID: "late", Time: t0.Add(time.Minute), DeviceID: "cam-1", Kind: vigil.KindNetwork, Action: "connect",
		Fields: map[string]any{"destination.domain": "c2.example.net"}}
	before, err := iv.BlastRadius(t.Context(), "inc-1")
	if err != nil {
		t.Fatal(err)
	}
	b := newBatch(&ev)
	if err := st.PutGraph(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	after, err := iv.BlastRadius(t.Context(), "inc-1")
	if err != nil {
		t.Fatal(err)
	}
	if after.Total != before.Total+1 || !slices.ContainsFunc(after.Items, func(im Impact) bool { return im.Entity == "domain:c2.example.net" }) {
		t.Fatalf("after a new event: %d items (before %d), want c2.example.net added", after.Total, before.Total)
	}
}

func TestTopicFilters(t *testing.T) {
	f := func(topic string, want ...string) {
		t.Helper()
		got := topicFilters(topic)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("topicFilters(%q) = %q, want %q", topic, got, want)
		}
	}
	// "a/b/#" matches "a/b" too (the parent level); "a" and "+" do not.
	f("a/b", "#", "+/#", "+/+", "+/+/#", "+/b", "+/b/#", "a/#", "a/+", "a/+/#", "a/b", "a/b/#")
	f("$SYS/x", "$SYS/#", "$SYS/+", "$SYS/+/#", "$SYS/x", "$SYS/x/#")
}

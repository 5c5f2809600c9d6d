package console

import (
	"strings"
	"testing"

	"github.com/vigil-iot/vigil/investigate"
	"github.com/vigil-iot/vigil/store"
)

// TestHuntChart: an aggregation's count column is drawn against its group
// columns (those before it); a table without a count column has no chart.
func TestHuntChart(t *testing.T) {
	ch := huntChart([]string{"source.ip", "device.id", "count", "users"}, [][]string{{"203.0.113.9", "cam-1", "5", "3"}, {"203.0.113.9", "cam-2", "1", "1"}})
	if ch == nil || !strings.Contains(string(ch.SVG), "<title>203.0.113.9 · cam-1: 5</title>") || ch.Desc != "count by source.ip, device.id: 6 in all." {
		t.Fatalf("chart: %+v", ch)
	}
	if ch := huntChart([]string{"count"}, [][]string{{"42"}}); ch == nil || !strings.Contains(string(ch.SVG), "<title>all: 42</title>") {
		t.Fatalf("a count without groups: %+v", ch)
	}
	if ch := huntChart([]string{"_time", "device.id"}, [][]string{{"t", "d"}}); ch != nil {
		t.Fatalf("a table without a count has a chart: %+v", ch)
	}
}

// TestBlastGraph: the compromised device in the centre, every entity
// drawn with its type's class, its edge labelled with its first reason,
// and text escaped.
func TestBlastGraph(t *testing.T) {
	br := investigate.BlastRadius{IncidentID: "inc-1", Compromised: []string{"cam-1"}, Total: 3, Items: []investigate.Impact{
		{Entity: "device:plc-1", Device: "plc-1", Score: 11, Reasons: []investigate.Reason{{Code: "reached", Detail: "cam-1 talked to 10.0.0.9",
			Relations: []store.Relation{{From: "device:cam-1", Rel: "talked_to", To: "ip:10.0.0.9", Count: 3}}}}},
		{Entity: "mqtt.topic:plant/<valves>/set", Score: 10, Reasons: []investigate.Reason{{Code: "reached"}}},
		{Entity: "user:root", Score: 7, Reasons: []investigate.Reason{{Code: "same_account"}}},
	}}
	svg := string(blastGraph(br).SVG)
	for _, want := range []string{`<g class="node n-compromised"><circle cx="450.0" cy="230.0" r="14"/>`, `<g class="node n-device">`,
		`<g class="node n-mqtt-topic">`, `<g class="node n-user">`, `>same_account</text>`, `plant/&lt;valves&gt;/set`} {
		if !strings.Contains(svg, want) {
			t.Errorf("no %q in\n%s", want, svg)
		}
	}
	if strings.Contains(svg, "<valves>") || strings.Count(svg, `<line class="edge"`) != 3 {
		t.Errorf("graph:\n%s", svg)
	}
	if got := evidenceCount(br.Items[0].Reasons); got != "3 events" {
		t.Errorf("evidence %q", got)
	}
}

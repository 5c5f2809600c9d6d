package ingest

import (
	"net/netip"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

func TestDeriveID(t *testing.T) {
	at := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	a := DeriveID(at, "cam-1", "7", "health")
	if a != DeriveID(at, "cam-1", "7", "health") {
		t.Fatal("not deterministic")
	}
	for _, other := range []string{
		DeriveID(at, "cam-1", "8", "health"),
		DeriveID(at, "cam-17", "", "health"),
		DeriveID(at.Add(time.Millisecond), "cam-1", "7", "health"),
	} {
		if other == a {
			t.Fatalf("collision: %s", a)
		}
	}
	if len(a) != len(vigil.NewID()) {
		t.Fatalf("len %d, want %d", len(a), len(vigil.NewID()))
	}
	// Ids sort by time like vigil.NewID's.
	if !(DeriveID(at, "x") < DeriveID(at.Add(time.Second), "a")) {
		t.Fatal("ids do not sort by time")
	}
}

func TestLiftNetwork(t *testing.T) {
	e := vigil.Event{Fields: map[string]any{
		"network.transport": "TCP", "source.ip": "::ffff:203.0.113.7", "source.port": "51514",
		"destination.ip": "not-an-ip", "destination.port": 22.0, "user.name": "root",
	}}
	LiftNetwork(&e)
	want := vigil.Network{Transport: "tcp", SrcIP: netip.MustParseAddr("203.0.113.7"), SrcPort: 51514, DstPort: 22}
	if e.Network == nil || *e.Network != want {
		t.Fatalf("network = %+v, want %+v", e.Network, want)
	}
	if e.Fields["destination.ip"] != "not-an-ip" || e.Fields["user.name"] != "root" || len(e.Fields) != 2 {
		t.Fatalf("fields = %v", e.Fields)
	}
	if v, _ := e.FieldString("source.ip"); v != "203.0.113.7" {
		t.Fatalf("source.ip = %q", v)
	}

	e = vigil.Event{Fields: map[string]any{"source.port": "99999", "destination.port": 1.5}}
	LiftNetwork(&e)
	if e.Network != nil || len(e.Fields) != 2 {
		t.Fatalf("bad ports lifted: %+v %v", e.Network, e.Fields)
	}
}

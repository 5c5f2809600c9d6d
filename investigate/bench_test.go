package investigate

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/graph"
	"github.com/vigil-iot/vigil/store/sqlite"
)

// BenchmarkBlastRadius measures one blast radius answer on SQLite with a
// fleet of 2,000 inventoried devices in one /16 and the graph of 200,000
// events (logins from 50 addresses to every device, connections between
// neighbours, MQTT publishes and subscriptions): ns/op is per answer.
func BenchmarkBlastRadius(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(b.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	const devices, events = 2000, 200000
	for d := range devices {
		addr := fmt.Sprintf("10.1.%d.%d/16", d/250, d%250+1)
		if err := st.PutDevice(ctx, vigil.Device{ID: fmt.Sprintf("dev-%04d", d), Class: vigil.ClassCamera, Firmware: "1.0", State: vigil.StateActive,
			Software: []vigil.Component{{Name: "busybox", Version: "1.31.1"}}, FirstSeen: t0, LastSeen: t0,
			Network: []vigil.NetIdentity{{Addresses: []string{addr}}}}); err != nil {
			b.Fatal(err)
		}
	}
	x := graph.DefaultExtractor()
	batch := graph.NewBatch()
	for i := range events {
		d := (i / 4) % devices
		ev := vigil.Event{ID: fmt.Sprintf("e%07d", i), Time: t0.Add(time.Duration(i) * time.Millisecond), DeviceID: fmt.Sprintf("dev-%04d", d)}
		switch i % 4 {
		case 0:
			ev.Kind, ev.Outcome = vigil.KindAuth, vigil.OutcomeFailure
			ev.Network = &vigil.Network{SrcIP: netip.AddrFrom4([4]byte{203, 0, 113, byte(i % 50)})}
			ev.Fields = map[string]any{"user.name": "root"}
		case 1:
			ev.Kind, ev.Action = vigil.KindNetwork, "connect"
			ev.Network = &vigil.Network{SrcIP: netip.AddrFrom4([4]byte{10, 1, byte(d / 250), byte(d%250 + 1)}), DstIP: netip.AddrFrom4([4]byte{10, 1, byte((d + 1) % devices / 250), byte((d+1)%devices%250 + 1)})}
		case 2:
			ev.Kind, ev.Action = vigil.KindInventory, "inventory"
			ev.Fields = map[string]any{"host.ip": []string{fmt.Sprintf("10.1.%d.%d", d/250, d%250+1)}}
		case 3:
			ev.Kind, ev.Action = "mqtt", "publish"
			ev.Fields = map[string]any{"mqtt.topic": fmt.Sprintf("site/%d/telemetry", d%100)}
			if d%7 == 0 {
				ev.Action, ev.Fields = "subscribe", map[string]any{"mqtt.topics": []string{fmt.Sprintf("site/%d/#", d%100)}}
			}
		}
		x.Add(batch, &ev)
		if batch.Events() == 1000 {
			if err := st.PutGraph(ctx, batch.Flush()); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := st.PutGraph(ctx, batch.Flush()); err != nil {
		b.Fatal(err)
	}
	if err := st.PutIncident(ctx, vigil.Incident{ID: "inc", Status: vigil.IncidentOpen, DeviceIDs: []string{"dev-0001"},
		Entities: []string{"ip:203.0.113.1", "user:root"}, FirstEventTime: t0, Detected: t0, Updated: t0}); err != nil {
		b.Fatal(err)
	}
	iv := New(Options{Store: st, Clock: fixedClock(t0)})
	b.ResetTimer()
	for b.Loop() {
		br, err := iv.BlastRadius(ctx, "inc")
		if err != nil {
			b.Fatal(err)
		}
		if br.Total < devices-1 {
			b.Fatalf("blast radius of %d entities, want at least %d", br.Total, devices-1)
		}
	}
}

// BenchmarkCampaigns measures one campaign list on SQLite over 500
// incidents (two alerts and five stored evidence events each; every tenth
// pair shares its source address): ns/op is per answer.
func BenchmarkCampaigns(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(b.TempDir(), "vigil.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	const incidents = 500
	var evs []vigil.Event
	for i := range incidents {
		dev := fmt.Sprintf("dev-%03d", i)
		at := t0.Add(time.Duration(i) * time.Minute)
		src := netip.AddrFrom4([4]byte{198, 51, byte(i / 20), byte(i % 20)}) // pairs 2k, 2k+1 differ...
		if i%10 < 2 {
			src = netip.AddrFrom4([4]byte{203, 0, 113, byte(i / 10)}) // ... but every tenth pair shares one
		}
		var ids []string
		for j := range 5 {
			id := fmt.Sprintf("e-%03d-%d", i, j)
			ids = append(ids, id)
			evs = append(evs, vigil.Event{ID: id, Time: at.Add(time.Duration(j) * time.Second), DeviceID: dev, Kind: vigil.KindAuth,
				Outcome: vigil.OutcomeFailure, Network: &vigil.Network{SrcIP: src}, Fields: map[string]any{"user.name": fmt.Sprintf("u%d", i)}})
		}
		inc := fmt.Sprintf("inc-%03d", i)
		for k, tech := range []string{"T1110", "T1059"} {
			a := vigil.Alert{ID: fmt.Sprintf("al-%03d-%d", i, k), DedupKey: inc + tech, RuleID: tech, Title: tech, Severity: vigil.SeverityHigh,
				DeviceID: dev, Techniques: []string{tech}, EventIDs: ids, IncidentID: inc, FirstEventTime: at, LastEventTime: at, Created: at, Count: 1}
			if k == 1 {
				a.Techniques = []string{fmt.Sprintf("T%04d", 1000+i)} // no shared sequence
			}
			if err := st.PutAlert(ctx, a); err != nil {
				b.Fatal(err)
			}
		}
		if err := st.PutIncident(ctx, vigil.Incident{ID: inc, Status: vigil.IncidentOpen, DeviceIDs: []string{dev},
			FirstEventTime: at, Detected: at, Updated: at}); err != nil {
			b.Fatal(err)
		}
	}
	if err := st.PutEvents(ctx, evs); err != nil {
		b.Fatal(err)
	}
	iv := New(Options{Store: st, Clock: fixedClock(t0.Add(24 * time.Hour))})
	b.ResetTimer()
	for b.Loop() {
		cs, err := iv.Campaigns(ctx, CampaignQuery{})
		if err != nil {
			b.Fatal(err)
		}
		if len(cs) != incidents/10 {
			b.Fatalf("%d campaigns, want %d", len(cs), incidents/10)
		}
	}
}

package baseline

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
)

// TestSeasonality checks the hour-of-day profile: a device publishes about
// 30 messages a minute, and 300 a minute from 02:00 to 02:09 UTC every
// night (a backup). Learning the first day, the flat baseline raises the
// backup on the nights of days 2 to 7; from day 8 the metric has a week of
// history and its 02:00 profile judges: the backup raises nothing, while
// the same 300 a minute at 14:00 raises, saying the daily profile judged.
// The profile survives a snapshot: days 9 and 10 run on a restored
// detector.
func TestSeasonality(t *testing.T) {
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	d := New(Options{Learn: 24 * time.Hour})
	rng := rand.New(rand.NewPCG(9, 9))
	ctx := context.Background()
	src, dst := netip.MustParseAddr("10.0.7.21"), netip.MustParseAddr("10.0.7.10")
	ev := vigil.Event{Source: "sensor", Kind: "mqtt", Action: "publish",
		Network: &vigil.Network{Transport: "tcp", SrcIP: src, SrcPort: 40000, DstIP: dst, DstPort: 1883},
		Fields:  map[string]any{"mqtt.topic": "plant/t"}}
	var alerts []vigil.Alert
	minute := func(at time.Time, n int) {
		for i := 0; i < n; i++ {
			ev.Time = at.Add(time.Duration(i) * time.Minute / time.Duration(n))
			d.Enrich(ctx, 0, &ev)
			d.Detect(ctx, 0, &ev, func(a vigil.Alert) { alerts = append(alerts, a) })
		}
	}
	backupAlerts := map[int]int{} // day → rate alerts during the backup
	day := func(n int, burstAt int) {
		for m := 0; m < 1440; m++ {
			c := 28 + rng.IntN(5)
			if m >= 120 && m < 130 || burstAt >= 0 && m >= burstAt && m < burstAt+10 {
				c = 300
			}
			before := len(alerts)
			minute(start.Add(time.Duration(n)*24*time.Hour+time.Duration(m)*time.Minute), c)
			if m >= 120 && m < 130 {
				backupAlerts[n] += len(alerts) - before
			}
		}
	}
	for n := 0; n < 9; n++ {
		day(n, -1)
	}
	b, err := d.Snapshot(0)
	if err != nil {
		t.Fatal(err)
	}
	d = New(Options{Learn: 24 * time.Hour})
	if err := d.Restore(0, b); err != nil {
		t.Fatal(err)
	}
	alerts = nil
	day(9, 14*60)
	for n := 1; n < 7; n++ {
		if backupAlerts[n] == 0 {
			t.Errorf("day %d: the flat baseline raised nothing for the backup (the profile judges only after 7 days)", n)
		}
	}
	for n := 8; n < 10; n++ {
		if backupAlerts[n] != 0 {
			t.Errorf("day %d: %d alerts for the nightly backup, judged by the daily profile", n, backupAlerts[n])
		}
	}
	var afternoon *vigil.Alert
	for i := range alerts {
		if alerts[i].RuleID == "baseline.rate_messages" && alerts[i].Severity >= vigil.SeverityMedium {
			afternoon = &alerts[i]
			break
		}
	}
	if afternoon == nil {
		t.Fatalf("300 messages a minute at 14:00 raised no medium rate alert: %v", ruleIDs(alerts))
	}
	x := afternoon.Fields["explanation"].(string)
	if afternoon.Fields["baseline.profile"] != "daily" || !strings.Contains(x, "daily profile for 14:00-14:59 UTC") {
		t.Errorf("the afternoon alert does not say the daily profile judged: %s", x)
	}
	t.Log(fmt.Sprintf("backup alerts per day: %v; afternoon: %s", backupAlerts, x))
}

// TestWeekendProfile checks the weekend profile: a device sends about
// 100 KB a minute, and 500 KB a minute from 10:00 to 17:59 UTC on
// Saturdays and Sundays. The first weekend, judged flat, raises; once the
// weekend profile has four weeks (the fifth weekend), the weekend peak
// raises nothing, judged against the weekend profile; 500 KB a minute at
// noon on the Wednesday after raises, judged against the daily profile.
func TestWeekendProfile(t *testing.T) {
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC) // a Monday
	d := New(Options{Learn: 24 * time.Hour})
	rng := rand.New(rand.NewPCG(4, 4))
	ctx := context.Background()
	ev := vigil.Event{Source: "sensor", Kind: "flow", Action: "flow",
		Network: &vigil.Network{Transport: "tcp", SrcIP: netip.MustParseAddr("10.0.7.31"), SrcPort: 40000, DstIP: netip.MustParseAddr("10.0.7.10"), DstPort: 443}}
	type key struct {
		day     int
		profile string
	}
	peak := map[key]int{} // rate alerts in the weekend peak hours, by day and profile
	var wednesday []vigil.Alert
	for n := 0; n < 38; n++ {
		day := start.Add(time.Duration(n) * 24 * time.Hour)
		weekend := day.Weekday() == time.Saturday || day.Weekday() == time.Sunday
		for m := 0; m < 1440; m++ {
			kb := 95 + rng.Float64()*10
			inPeak := m >= 600 && m < 1080
			if weekend && inPeak || n == 37 && m >= 720 && m < 730 {
				kb = 500
			}
			ev.Time = day.Add(time.Duration(m) * time.Minute)
			ev.Fields = map[string]any{"flow.reason": "end", "flow.bytes_toserver": kb * 1024}
			d.Enrich(ctx, 0, &ev)
			d.Detect(ctx, 0, &ev, func(a vigil.Alert) {
				if a.RuleID != "baseline.rate_bytes" {
					return
				}
				if weekend && inPeak {
					p, _ := a.Fields["baseline.profile"].(string)
					peak[key{n, p}]++
				}
				if n == 37 {
					wednesday = append(wednesday, a)
				}
			})
		}
	}
	if peak[key{5, ""}]+peak[key{5, "flat"}] == 0 {
		t.Errorf("the first Saturday's peak raised nothing judged flat: %v", peak)
	}
	for _, n := range []int{33, 34} { // the fifth weekend
		for k, c := range peak {
			if k.day == n && c > 0 {
				t.Errorf("day %d: %d alerts in the weekend peak (profile %q), judged by a weekend profile of four weeks", n, c, k.profile)
			}
		}
	}
	if len(wednesday) == 0 || wednesday[0].Fields["baseline.profile"] != "daily" {
		t.Fatalf("500 KB a minute at noon on a Wednesday: %v, want a rate alert judged by the daily profile", ruleIDs(wednesday))
	}
	t.Logf("peak alerts by day and profile: %v; Wednesday: %s", peak, wednesday[0].Fields["explanation"])
}

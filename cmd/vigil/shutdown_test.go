package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	vagent "github.com/vigil-iot/vigil/agent"
	"github.com/vigil-iot/vigil/agent/protocol"
)

// TestSIGTERMStopsInOrder runs `vigil serve` as a process, posts events,
// sends SIGTERM and checks that the server stops each stage in order with
// a log line, exits 0 in well under the 10 s allowed here (the figure is
// logged), and that the next start on the same data dir finds JetStream's
// state written: no warning or error from the embedded NATS server.
func TestSIGTERMStopsInOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "vigil")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("cannot build vigil: %v\n%s", err, out)
	}
	dir, addr := t.TempDir(), freeAddr(t)

	var first syncBuffer
	srv, token := startServeProcess(t, bin, dir, addr, true, &first)
	hc := httpsClient(t, dir)
	postEvents(t, hc, addr, token, 50)
	// An enrolled agent long-polls for commands, as every agent does: the
	// poll must not hold the shutdown for its wait (a minute).
	out, code := run(t, "ctl", "enroll-token", "create", "--class", "camera", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("enroll-token create: exit %d: %s", code, out)
	}
	id, err := vagent.Enroll(t.Context(), vagent.EnrollOptions{Server: "https://" + addr, Token: strings.TrimSpace(out),
		StateDir: t.TempDir(), CAFile: filepath.Join(dir, "pki", "ca.crt")})
	if err != nil {
		t.Fatal(err)
	}
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		ac := &http.Client{Transport: &http.Transport{TLSClientConfig: id.TLSConfig()}}
		if resp, err := ac.Get("https://" + addr + protocol.PathCommands + "?wait=60s"); err == nil {
			resp.Body.Close()
		}
	}()
	time.Sleep(500 * time.Millisecond) // let the consumers take the events, the poll wait

	start := time.Now()
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = srv.Wait()
	took := time.Since(start)
	t.Logf("SIGTERM to exit: %s", took)
	if err != nil {
		t.Errorf("exit after SIGTERM: %v, want status 0\n%s", err, first.String())
	}
	if took > 10*time.Second {
		t.Errorf("SIGTERM to exit took %s", took)
	}
	select {
	case <-polled:
	case <-time.After(10 * time.Second):
		t.Error("the agent's long poll outlived the server")
	}
	log := first.String()
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "component=serve") {
			t.Log(l)
		}
	}
	if strings.Contains(log, "cut at the drain timeout") {
		t.Errorf("a long poll held the shutdown until the drain timeout:\n%s", log)
	}
	at := 0
	for _, want := range []string{"shutting down: HTTP listener closed", "HTTP stopped, ingest drained", "consumers stopped",
		"store flushed and closed", "bus closed, JetStream shut down", "vigil stopped"} {
		i := strings.Index(log[at:], want)
		if i < 0 {
			t.Errorf("no %q after the previous stop line in the log:\n%s", want, log)
			break
		}
		at += i
	}

	// The embedded server wrote each stream's state on its way down.
	for _, stream := range []string{"VIGIL_EVENTS", "VIGIL_ALERTS"} {
		msgs := filepath.Join(dir, "nats", "jetstream", "$G", "streams", stream, "msgs")
		idx, err := os.Stat(filepath.Join(msgs, "index.db"))
		if err != nil {
			t.Errorf("stream %s: no state written at shutdown: %v", stream, err)
			continue
		}
		blocks, _ := filepath.Glob(filepath.Join(msgs, "*.blk"))
		for _, b := range blocks {
			if fi, err := os.Stat(b); err == nil && fi.ModTime().After(idx.ModTime()) {
				t.Errorf("stream %s: block %s written after the state (%s > %s)", stream, filepath.Base(b), fi.ModTime(), idx.ModTime())
			}
		}
	}

	// Twice more: a start after the SIGTERM, events, SIGTERM again. Neither
	// start may find JetStream's state outdated.
	for round := range 2 {
		var next syncBuffer
		srv, _ = startServeProcess(t, bin, dir, addr, false, &next)
		postEvents(t, hc, addr, token, 50)
		time.Sleep(500 * time.Millisecond)
		srv.Process.Signal(syscall.SIGTERM)
		srv.Wait()
		for _, l := range strings.Split(next.String(), "\n") {
			if strings.Contains(l, "server=nats") && (strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR")) {
				t.Errorf("start %d after a SIGTERM: %s", round+2, l)
			}
		}
	}
}

// startServeProcess runs `vigil serve` at debug level with its stdout and
// stderr both in logs, waits until /readyz answers and, on the first start
// of a data dir, until it has printed the admin token, which it returns.
func startServeProcess(t *testing.T, bin, dir, addr string, first bool, logs io.Writer) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--data-dir", dir, "--listen", addr, "--log-level", "debug")
	// An io.Writer rather than a pipe of our own: cmd.Wait returns only
	// once everything the process wrote is in logs (a reader goroutine of
	// our own could lag behind the exit on a busy machine).
	tokenc := make(chan string, 1)
	w := &tokenWriter{logs: logs, tokenc: tokenc}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var token string
	if first {
		select {
		case token = <-tokenc:
		case <-ctx.Done():
			t.Fatal("the server printed no admin token")
		}
	}
	hc := httpsClient(t, dir)
	for ctx.Err() == nil {
		resp, err := hc.Get("https://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd, token
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the server did not become ready")
	return nil, ""
}

// postEvents posts n process events to the server at addr.
func postEvents(t *testing.T, hc *http.Client, addr, token string, n int) {
	t.Helper()
	var body bytes.Buffer
	for i := range n {
		ev, _ := json.Marshal(map[string]any{"time": time.Now().UTC().Format(time.RFC3339Nano), "device_id": fmt.Sprintf("term-%d", i%5),
			"kind": "process", "action": "exec", "fields": map[string]any{"process.executable": "/bin/true"}})
		body.Write(append(ev, '\n'))
	}
	req, _ := http.NewRequest(http.MethodPost, "https://"+addr+"/api/v1/events", &body)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/x-ndjson")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("post events: %s", resp.Status)
	}
}

// tokenWriter copies a process's output to logs and sends the first
// admin token (vgl_...) it sees on tokenc. exec calls Write from one
// goroutine; a token split across two writes is found once its line ends.
type tokenWriter struct {
	logs   io.Writer
	tokenc chan string
	line   []byte
}

var tokenRE = regexp.MustCompile(`vgl_[A-Za-z0-9_-]+`)

func (w *tokenWriter) Write(p []byte) (int, error) {
	w.line = append(w.line, p...)
	for {
		i := bytes.IndexByte(w.line, '\n')
		if i < 0 {
			break
		}
		if m := tokenRE.Find(w.line[:i]); m != nil {
			select {
			case w.tokenc <- string(m):
			default:
			}
		}
		w.line = w.line[i+1:]
	}
	return w.logs.Write(p)
}

package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestAcknowledgedEventsSurviveSIGKILL runs the real server binary, posts
// events until it has acknowledged some batches, kills it with SIGKILL right
// after the acknowledgements, restarts it on the same data dir and checks
// that every acknowledged event is stored and was evaluated: each batch
// carries one telnet-listener event per device, which the built-in rules
// alert on, so every acknowledged batch's devices must have an alert.
func TestAcknowledgedEventsSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "vigil")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("cannot build vigil: %v\n%s", err, out)
	}
	dir := t.TempDir()
	addr := freeAddr(t)

	var logs syncBuffer
	srv, token := startServeProcess(t, bin, dir, addr, true, &logs)
	hc := httpsClient(t, dir)
	base := "https://" + addr

	type batch struct {
		ids     []string
		devices []string
	}
	var acked []batch
	for b := 0; b < 40; b++ {
		var buf bytes.Buffer
		var bt batch
		for i := 0; i < 50; i++ {
			dev := fmt.Sprintf("kill-dev-%02d-%02d", b, i%5)
			id := fmt.Sprintf("kill-%02d-%03d", b, i)
			ev := map[string]any{
				"id": id, "time": time.Now().UTC().Format(time.RFC3339Nano), "device_id": dev,
				"kind": "process", "action": "exec", "fields": map[string]any{"process.executable": "/bin/true"},
			}
			if i < 5 {
				ev["kind"], ev["action"] = "network", "listen"
				ev["network"] = map[string]any{"transport": "tcp", "dst_port": 23}
				bt.devices = append(bt.devices, dev)
			}
			line, _ := json.Marshal(ev)
			buf.Write(line)
			buf.WriteByte('\n')
			bt.ids = append(bt.ids, id)
		}
		req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/events", &buf)
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/x-ndjson")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("batch %d: %v", b, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("batch %d: %s: %s", b, resp.Status, body)
		}
		acked = append(acked, bt)
	}
	// SIGKILL right after the last acknowledgement: nothing gets to flush.
	if err := srv.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	srv.Wait()

	fmt.Fprintln(&logs, "--- SIGKILL, restart ---")
	srv, _ = startServeProcess(t, bin, dir, addr, false, &logs)
	defer func() {
		srv.Process.Signal(syscall.SIGTERM)
		srv.Wait()
	}()

	get := func(path string) (int, []byte) {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	// Batches in flight at the kill come back after the bus AckWait (10s).
	deadline := time.Now().Add(90 * time.Second)
	var missing []string
	for {
		missing = missing[:0]
		for _, bt := range acked {
			for _, id := range bt.ids {
				if code, _ := get("/api/v1/events/" + id); code != http.StatusOK {
					missing = append(missing, "event "+id)
				}
			}
			for _, dev := range bt.devices {
				code, body := get("/api/v1/alerts?device=" + dev)
				if code != http.StatusOK || !strings.Contains(string(body), `"vigil-net-telnet-listener"`) {
					missing = append(missing, "alert for "+dev)
				}
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	if len(missing) > 0 {
		_, metrics := get("/metrics")
		for _, l := range strings.Split(string(metrics), "\n") {
			if strings.HasPrefix(l, "vigil_bus_") || strings.HasPrefix(l, "vigil_detect_events") || strings.HasPrefix(l, "vigil_store_events") {
				fmt.Fprintln(&logs, l)
			}
		}
		t.Fatalf("%d acknowledged items lost after SIGKILL, e.g. %v\nserver log:\n%s", len(missing), missing[:min(5, len(missing))], logs.String())
	}
}

func httpsClient(t *testing.T, dir string) *http.Client {
	t.Helper()
	var pool *x509.CertPool
	for ctx := time.Now(); pool == nil; {
		pem, err := os.ReadFile(filepath.Join(dir, "pki", "ca.crt"))
		if err == nil {
			pool = x509.NewCertPool()
			pool.AppendCertsFromPEM(pem)
			break
		}
		if time.Since(ctx) > 30*time.Second {
			t.Fatalf("no CA certificate: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

package main

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServeFirstStartSecrets starts vigil serve on a data dir that an
// older version left readable by others (0755, vigil.db 0644): the server
// makes the dir and everything in it its owner's only, prints the
// bootstrap admin token on stdout and writes it to a 0600 file, and the
// log never carries the token.
func TestServeFirstStartSecrets(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(filepath.Join(dir, "misc"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Join(dir, "misc"), 0o755)
	for _, f := range []string{"vigil.db", "misc/old.txt"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chmod(filepath.Join(dir, f), 0o644)
	}
	var stdout, stderr lockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := newRootCmd()
	cmd.SetOut(&stdout)
	cmd.SetErr(&stderr)
	cmd.SetArgs([]string{"serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--insecure-http", "--log-level", "debug",
		"--sigma", t.TempDir()})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	deadline := time.Now().Add(2 * time.Minute) // a guard, not a measure
	for !strings.Contains(stderr.String(), "vigil serving") {
		select {
		case err := <-done:
			t.Fatalf("serve stopped: %v\n%s", err, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("serve did not log that it serves (to cmd's stderr):\n%s", stderr.String())
		}
	}
	// Let the pipeline write the store and JetStream before stopping.
	time.Sleep(time.Second)
	// SQLite's -wal and -shm exist while the store is open (a clean stop
	// removes them): they hold the same data as vigil.db.
	for _, f := range []string{"vigil.db-wal", "vigil.db-shm"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Errorf("%s while serving: %v", f, err)
		} else if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is %v while serving", f, fi.Mode().Perm())
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v\n%s", err, stderr.String())
	}

	b, err := os.ReadFile(filepath.Join(dir, AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(b))
	if !strings.HasPrefix(token, "vgl_") {
		t.Fatalf("admin token file holds %q", token)
	}
	if !strings.Contains(stdout.String(), token) {
		t.Errorf("the bootstrap token is not on stdout:\n%s", stdout.String())
	}
	if strings.Contains(stderr.String(), token) {
		t.Errorf("the bootstrap token is in the log:\n%s", stderr.String())
	}
	// Nothing in the data dir is readable, writable or searchable by
	// group or others: what was there before and what the server made.
	seen := map[string]bool{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		seen[rel] = true
		// Certificates are public (pki writes them 0644); the dir keeps
		// others out all the same.
		if fi.Mode().Perm()&0o077 != 0 && !(filepath.Ext(p) == ".crt" && fi.Mode().Perm() == 0o644) {
			t.Errorf("%s is %v", rel, fi.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".", "vigil.db", "misc/old.txt", AdminTokenFile, "pki/ca.key", "nats"} {
		if !seen[want] {
			t.Errorf("%s missing from the data dir", want)
		}
	}
}

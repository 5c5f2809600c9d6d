package natsbus_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/bus/bustest"
	"github.com/vigil-iot/vigil/bus/natsbus"
)

// TestKilledPublisher runs a child process that publishes to an embedded
// bus and reports each acknowledged batch, kills it with SIGKILL, reopens
// the data dir and checks that every acknowledged event is there.
func TestKilledPublisher(t *testing.T) {
	if dir := os.Getenv("NATSBUS_KILL_CHILD_DIR"); dir != "" {
		killChild(t, dir)
		return
	}
	if testing.Short() {
		t.Skip("runs a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledPublisher$", "-test.v")
	cmd.Env = append(os.Environ(), "NATSBUS_KILL_CHILD_DIR="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const batch = 100
	acked := -1 // highest batch acknowledged
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		n, ok := strings.CutPrefix(sc.Text(), "acked ")
		if !ok {
			continue
		}
		if acked, err = strconv.Atoi(n); err != nil {
			t.Fatalf("child printed %q", sc.Text())
		}
		if acked >= 40 {
			break
		}
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	go func() {
		for sc.Scan() { // drain the pipe so Wait returns
		}
	}()
	cmd.Wait()
	if acked < 0 {
		t.Fatal("the child acknowledged nothing")
	}

	cfg := testConfig(t)
	cfg.DataDir = dir
	cfg.Groups = []string{"g"}
	b := open(t, cfg)
	want := bustest.Events("kill", 0, (acked+1)*batch, 10)
	var mu sync.Mutex
	seen := map[string]bool{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- b.ConsumeEvents(ctx, "g", func(_ context.Context, _ int, events []vigil.Event) error {
			mu.Lock()
			defer mu.Unlock()
			for _, e := range events {
				seen[e.ID] = true
			}
			return nil
		})
	}()
	missing := func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, e := range want {
			if !seen[e.ID] {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(60 * time.Second)
	for missing() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := missing(); n > 0 {
		t.Errorf("%d of %d acknowledged events lost after SIGKILL", n, len(want))
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
	t.Logf("%d batches acknowledged before the kill, %d events found after", acked+1, len(seen))
}

// killChild publishes batches until killed, printing "acked N" after
// batch N is acknowledged.
func killChild(t *testing.T, dir string) {
	cfg := testConfig(t)
	cfg.DataDir = dir
	cfg.Groups = []string{"g"}
	b, err := natsbus.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if err := b.PublishEvents(context.Background(), bustest.Events("kill", i*100, 100, 10)); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(os.Stdout, "acked %d\n", i)
	}
}

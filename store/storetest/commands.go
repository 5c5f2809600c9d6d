package storetest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

func queued(id, dev string, expires time.Duration) store.QueuedCommand {
	return store.QueuedCommand{ID: id, DeviceID: dev, Queued: base, Expires: base.Add(expires), Signed: []byte(`{"payload":"` + id + `"}`)}
}

func commandIDs(cs []store.QueuedCommand) []string {
	return ids(cs, func(c store.QueuedCommand) string { return c.ID })
}

// testCommands checks the command queue: enqueued in order with a Seq,
// pending per device and for all (unexpired, untaken, oldest first,
// limited), bounded per device and in total, taken once, results
// recorded, old commands deleted; bad and duplicate commands refused.
func testCommands(t *testing.T, s store.Store) {
	var seqs []int64
	for _, c := range []store.QueuedCommand{queued("c1", "cam-1", time.Hour), queued("c2", "cam-2", time.Hour), queued("c3", "cam-1", time.Minute), queued("c4", "cam-1", time.Hour)} {
		c.Queued = c.Queued.In(elsewhere)
		got, err := s.EnqueueCommand(ctx(t), c, 3, 10)
		must(t, err, "EnqueueCommand "+c.ID)
		if got.Queued.Location() != time.UTC || !got.Queued.Equal(base) || got.ID != c.ID || !bytes.Equal(got.Signed, c.Signed) {
			t.Fatalf("EnqueueCommand returned %+v", got)
		}
		seqs = append(seqs, got.Seq)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Fatalf("Seq not increasing: %v", seqs)
		}
	}
	_, err := s.EnqueueCommand(ctx(t), queued("c1", "cam-3", time.Hour), 0, 0)
	wantCode(t, err, vigil.ECONFLICT, "EnqueueCommand with a taken id")
	for i, bad := range []store.QueuedCommand{
		{DeviceID: "cam-1", Queued: base, Expires: base.Add(time.Hour), Signed: []byte("x")},
		{ID: "b", Queued: base, Expires: base.Add(time.Hour), Signed: []byte("x")},
		{ID: "b", DeviceID: "cam-1", Expires: base.Add(time.Hour), Signed: []byte("x")},
		{ID: "b", DeviceID: "cam-1", Queued: base, Signed: []byte("x")},
		{ID: "b", DeviceID: "cam-1", Queued: base, Expires: base.Add(time.Hour)},
	} {
		_, err := s.EnqueueCommand(ctx(t), bad, 0, 0)
		wantCode(t, err, vigil.EINVALID, fmt.Sprintf("EnqueueCommand bad %d", i))
	}
	// cam-1 has three pending: a fourth is refused, a total of four too.
	_, err = s.EnqueueCommand(ctx(t), queued("c5", "cam-1", time.Hour), 3, 0)
	wantCode(t, err, vigil.EBUSY, "EnqueueCommand beyond the device's bound")
	_, err = s.EnqueueCommand(ctx(t), queued("c5", "cam-9", time.Hour), 3, 4)
	wantCode(t, err, vigil.EBUSY, "EnqueueCommand beyond the total bound")
	// Once c3 expired, cam-1 has room again.
	later := queued("c5", "cam-1", time.Hour)
	later.Queued = base.Add(2 * time.Minute)
	_, err = s.EnqueueCommand(ctx(t), later, 3, 0)
	must(t, err, "EnqueueCommand after an expiry")

	now := base.Add(30 * time.Second)
	p, err := s.PendingCommands(ctx(t), "cam-1", now, 0)
	must(t, err, "PendingCommands")
	sameIDs(t, "pending of cam-1", commandIDs(p), []string{"c1", "c3", "c4", "c5"})
	p, _ = s.PendingCommands(ctx(t), "", base.Add(2*time.Minute), 0)
	sameIDs(t, "pending of all after c3's expiry", commandIDs(p), []string{"c1", "c2", "c4", "c5"})
	p, _ = s.PendingCommands(ctx(t), "", now, 2)
	sameIDs(t, "pending limited", commandIDs(p), []string{"c1", "c2"})

	// Taken once, oldest first, without the expired one; limited.
	got, err := s.TakeCommands(ctx(t), "cam-1", base.Add(2*time.Minute), 2)
	must(t, err, "TakeCommands")
	sameIDs(t, "taken", commandIDs(got), []string{"c1", "c4"})
	if !got[0].Taken.Equal(base.Add(2 * time.Minute)) {
		t.Fatalf("Taken = %v", got[0].Taken)
	}
	got, _ = s.TakeCommands(ctx(t), "cam-1", base.Add(2*time.Minute), 0)
	sameIDs(t, "taken next", commandIDs(got), []string{"c5"})
	got, _ = s.TakeCommands(ctx(t), "cam-1", base.Add(2*time.Minute), 0)
	sameIDs(t, "taken again", commandIDs(got), nil)
	p, _ = s.PendingCommands(ctx(t), "cam-1", base, 0)
	sameIDs(t, "pending after the take (c3 expired untaken)", commandIDs(p), []string{"c3"})

	// Results.
	c, err := s.GetCommand(ctx(t), "c1")
	must(t, err, "GetCommand")
	if c.Result != nil || !c.Taken.Equal(base.Add(2*time.Minute)) || c.DeviceID != "cam-1" {
		t.Fatalf("GetCommand before a result: %+v", c)
	}
	must(t, s.RecordCommandResult(ctx(t), "c1", []byte(`{"status":"succeeded"}`), base.Add(3*time.Minute)), "RecordCommandResult")
	c, _ = s.GetCommand(ctx(t), "c1")
	if string(c.Result) != `{"status":"succeeded"}` || !c.ResultAt.Equal(base.Add(3*time.Minute)) {
		t.Fatalf("GetCommand after a result: %+v", c)
	}
	wantCode(t, s.RecordCommandResult(ctx(t), "nope", []byte("{}"), base), vigil.ENOTFOUND, "RecordCommandResult of none")
	wantCode(t, s.RecordCommandResult(ctx(t), "c2", nil, base), vigil.EINVALID, "RecordCommandResult empty")
	_, err = s.GetCommand(ctx(t), "nope")
	wantCode(t, err, vigil.ENOTFOUND, "GetCommand of none")

	// Retention: c3 expired a minute after base; the others an hour after.
	n, err := s.DeleteCommandsBefore(ctx(t), base.Add(10*time.Minute))
	must(t, err, "DeleteCommandsBefore")
	if n != 1 {
		t.Fatalf("DeleteCommandsBefore removed %d, want 1", n)
	}
	_, err = s.GetCommand(ctx(t), "c3")
	wantCode(t, err, vigil.ENOTFOUND, "GetCommand after retention")
}

// testDeviceCommands checks the history of a device's commands: every
// command of the device and only of it, pending, taken, with a result or
// expired, newest first, with who sent it and its result, a page at a
// time to the end; an unknown device has none; a bad cursor or limit is
// EINVALID.
func testDeviceCommands(t *testing.T, s store.Store) {
	for i, id := range []string{"h1", "h2", "o1", "h3", "h4", "h5"} {
		c := queued(id, "cam-1", time.Duration(i+1)*time.Minute)
		c.Queued = base.Add(time.Duration(i) * time.Second)
		c.By = "user:ana"
		if id == "o1" {
			c.DeviceID, c.By = "cam-2", ""
		}
		if id == "h4" {
			c.By = "action:act-1"
		}
		_, err := s.EnqueueCommand(ctx(t), c, 0, 0)
		must(t, err, "EnqueueCommand "+id)
	}
	_, err := s.TakeCommands(ctx(t), "cam-1", base.Add(10*time.Second), 2)
	must(t, err, "TakeCommands")
	must(t, s.RecordCommandResult(ctx(t), "h2", []byte(`{"status":"failed"}`), base.Add(20*time.Second)), "RecordCommandResult")

	all, next, err := s.DeviceCommands(ctx(t), "cam-1", store.Page{})
	must(t, err, "DeviceCommands")
	sameIDs(t, "commands of cam-1, newest first", commandIDs(all), []string{"h5", "h4", "h3", "h2", "h1"})
	if next != "" {
		t.Fatalf("DeviceCommands of all: next cursor %q", next)
	}
	h5, h4, h2, h1 := all[0], all[1], all[3], all[4]
	if h4.By != "action:act-1" || h5.By != "user:ana" || !h5.Taken.IsZero() || h5.Result != nil || !h5.Queued.Equal(base.Add(5*time.Second)) ||
		!h5.Expires.Equal(base.Add(6*time.Minute)) || h5.DeviceID != "cam-1" || !bytes.Equal(h5.Signed, []byte(`{"payload":"h5"}`)) {
		t.Fatalf("newest command = %+v", h5)
	}
	if !h1.Taken.Equal(base.Add(10*time.Second)) || h1.Result != nil {
		t.Fatalf("taken command = %+v", h1)
	}
	if !h2.Taken.Equal(base.Add(10*time.Second)) || string(h2.Result) != `{"status":"failed"}` || !h2.ResultAt.Equal(base.Add(20*time.Second)) {
		t.Fatalf("command with a result = %+v", h2)
	}
	c, _ := s.GetCommand(ctx(t), "h4")
	if c.By != "action:act-1" {
		t.Fatalf("GetCommand By = %q", c.By)
	}

	var got []string
	p := store.Page{Limit: 2}
	for range 5 {
		page, next, err := s.DeviceCommands(ctx(t), "cam-1", p)
		must(t, err, "DeviceCommands page")
		got = append(got, commandIDs(page)...)
		if len(page) > 2 {
			t.Fatalf("page of %d, limit 2", len(page))
		}
		if next == "" {
			break
		}
		p.Cursor = next
	}
	sameIDs(t, "commands of cam-1 by pages of 2", got, []string{"h5", "h4", "h3", "h2", "h1"})
	// A page that ends exactly at the last command has no next cursor.
	page, next, err := s.DeviceCommands(ctx(t), "cam-1", store.Page{Limit: 5})
	must(t, err, "DeviceCommands limit 5")
	if len(page) != 5 || next != "" {
		t.Fatalf("DeviceCommands limit 5: %d, next %q", len(page), next)
	}

	other, _, err := s.DeviceCommands(ctx(t), "cam-2", store.Page{})
	must(t, err, "DeviceCommands cam-2")
	sameIDs(t, "commands of cam-2", commandIDs(other), []string{"o1"})
	if other[0].By != "" {
		t.Fatalf("By of a command sent without one = %q", other[0].By)
	}
	none, next, err := s.DeviceCommands(ctx(t), "nope", store.Page{})
	if err != nil || len(none) != 0 || next != "" {
		t.Fatalf("DeviceCommands of an unknown device = %v %q %v", none, next, err)
	}
	_, _, err = s.DeviceCommands(ctx(t), "cam-1", store.Page{Cursor: "%%"})
	wantCode(t, err, vigil.EINVALID, "DeviceCommands with a bad cursor")
	_, _, err = s.DeviceCommands(ctx(t), "cam-1", store.Page{Limit: -1})
	wantCode(t, err, vigil.EINVALID, "DeviceCommands with a negative limit")

	// Retention removes expired commands from the history too.
	_, err = s.DeleteCommandsBefore(ctx(t), base.Add(150*time.Second))
	must(t, err, "DeleteCommandsBefore")
	all, _, _ = s.DeviceCommands(ctx(t), "cam-1", store.Page{})
	sameIDs(t, "commands of cam-1 after retention", commandIDs(all), []string{"h5", "h4", "h3"})
}

// testCommandsConcurrent checks that of nodes polling one device at once,
// each command is taken by exactly one.
func testCommandsConcurrent(t *testing.T, s store.Store) {
	const n = 40
	for i := range n {
		_, err := s.EnqueueCommand(ctx(t), queued(name("cmd", i), "cam-1", time.Hour), 0, 0)
		must(t, err, "EnqueueCommand")
	}
	var (
		mu  sync.Mutex
		all []string
	)
	runConcurrently(8, func(int) {
		for {
			got, err := s.TakeCommands(ctx(t), "cam-1", base, 3)
			if err != nil {
				t.Errorf("TakeCommands: %v", err)
				return
			}
			if len(got) == 0 {
				return
			}
			mu.Lock()
			all = append(all, commandIDs(got)...)
			mu.Unlock()
		}
	})
	noDuplicates(t, "commands taken", all)
	if len(all) != n {
		t.Fatalf("%d commands taken, want %d", len(all), n)
	}
}

// testCommandsWatch checks that WatchCommands tells of a command enqueued
// after it started. Commands are enqueued until one is seen, since the
// watch may take a moment to be listening.
func testCommandsWatch(t *testing.T, s store.Store) {
	seen := make(chan string, 100)
	wctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.WatchCommands(wctx, func(dev string) { seen <- dev }) }()
	deadline := time.After(60 * time.Second)
	for i := 0; ; i++ {
		_, err := s.EnqueueCommand(ctx(t), queued(name("w", i), "cam-watch", time.Hour), 0, 0)
		must(t, err, "EnqueueCommand")
		select {
		case dev := <-seen:
			if dev != "cam-watch" && dev != "" {
				t.Fatalf("WatchCommands told of %q", dev)
			}
			cancel()
			if err := <-done; err != wctx.Err() {
				t.Fatalf("WatchCommands returned %v after its context ended", err)
			}
			return
		case err := <-done:
			t.Fatalf("WatchCommands returned %v", err)
		case <-deadline:
			t.Fatal("WatchCommands told of none of the commands enqueued in 60s")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// testSecrets checks sealed secrets: stored once, the first kept when
// another is put for the same name (also when racing), found by name;
// bad ones refused.
func testSecrets(t *testing.T, s store.Store) {
	_, err := s.GetSecret(ctx(t), "ca")
	wantCode(t, err, vigil.ENOTFOUND, "GetSecret before any")
	a := store.Secret{Name: "ca", Sealed: []byte{1, 2, 3}, Created: base.In(elsewhere)}
	got, err := s.PutSecretIfAbsent(ctx(t), a)
	must(t, err, "PutSecretIfAbsent")
	a.Created = base
	deepEqual(t, "stored secret", got, a)
	got, err = s.PutSecretIfAbsent(ctx(t), store.Secret{Name: "ca", Sealed: []byte{9}, Created: base.Add(time.Hour)})
	must(t, err, "PutSecretIfAbsent again")
	deepEqual(t, "secret after a second put", got, a)
	got, err = s.GetSecret(ctx(t), "ca")
	must(t, err, "GetSecret")
	deepEqual(t, "secret by name", got, a)
	for i, bad := range []store.Secret{{Sealed: []byte{1}, Created: base}, {Name: "x", Created: base}, {Name: "x", Sealed: []byte{1}}} {
		_, err := s.PutSecretIfAbsent(ctx(t), bad)
		wantCode(t, err, vigil.EINVALID, fmt.Sprintf("PutSecretIfAbsent bad %d", i))
	}
	// Nodes racing on their first start all end with one value.
	results := make([][]byte, 8)
	runConcurrently(8, func(i int) {
		got, err := s.PutSecretIfAbsent(ctx(t), store.Secret{Name: "race", Sealed: []byte{byte(i + 1)}, Created: base})
		if err != nil {
			t.Errorf("PutSecretIfAbsent %d: %v", i, err)
			return
		}
		results[i] = got.Sealed
	})
	for i, r := range results {
		if !bytes.Equal(r, results[0]) {
			t.Fatalf("racer %d got %v, racer 0 %v", i, r, results[0])
		}
	}
}

package httpin

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/ingest"
	"github.com/vigil-iot/vigil/ingest/bulk"
)

// enrolledSet is an Identities of a fixed set of devices.
type enrolledSet map[string]bool

func (s enrolledSet) Enrolled(_ context.Context, id string) (bool, error) { return s[id], nil }

func failedLogin(device string, t time.Time) string {
	return fmt.Sprintf(`{"time":%q,"device_id":%q,"kind":"auth","action":"login","outcome":"failure","user.name":"root"}`+"\n",
		t.Format(time.RFC3339), device)
}

// TestTokenMayNotSpeakForEnrolledDevice is the attack of issue 14 item 4
// at the ingest boundary: a holder of an agent token posts failed logins
// in the name of an enrolled camera. They are refused one by one; those
// about a device without an enrolled identity pass, marked with the
// token's name as their provenance, never what the body claims.
func TestTokenMayNotSpeakForEnrolledDevice(t *testing.T) {
	e := newEnv(t, Options{Identities: enrolledSet{"cam-1": true}})
	ctx := auth.NewContext(context.Background(), auth.Token{Name: "fleet", Role: auth.RoleAgent})
	body := failedLogin("cam-1", now) + failedLogin("plug-7", now) +
		`{"time":"2026-11-22T03:15:00Z","device_id":"plug-7","kind":"auth","source":"agent"}` + "\n" +
		`{"time":"2026-11-22T03:15:00Z","device_id":"plug-7","kind":"auth","provenance":"device-cert:plug-7"}` + "\n"
	a := e.post(ctx, PathEvents, "application/x-ndjson", []byte(body))
	if a.code != 200 || a.resp.Accepted != 1 || a.resp.RejectedCount != 3 {
		t.Fatalf("%d %s", a.code, a.raw)
	}
	r := a.resp.Rejected
	if r[0].Line != 1 || r[0].Field != "device_id" || !strings.Contains(r[0].Error, "enrolled identity") ||
		r[1].Line != 3 || r[1].Field != "source" || !strings.Contains(r[1].Error, "reserved for agent reports") ||
		r[2].Line != 4 || r[2].Field != "provenance" {
		t.Fatalf("rejections: %s", a.raw)
	}
	if got := e.pub.events; len(got) != 1 || got[0].DeviceID != "plug-7" || got[0].Provenance != "token:fleet" {
		t.Fatalf("published %+v", got)
	}
	if n := e.counter("vigil_ingest_rejected_total", "source", "bulk", "reason", "invalid"); n != 3 {
		t.Fatalf("rejected counter = %v", n)
	}

	// A report in the camera's name with the token: refused whole.
	rep := []byte(`{"version":"1","device_id":"cam-1","time":"2026-11-22T03:15:00Z","events":[{"time":"2026-11-22T03:15:00Z","kind":"auth","outcome":"failure"}]}`)
	a = e.post(ctx, PathReport, "application/json", rep)
	if a.code != 403 || a.resp.Error.Code != vigil.EFORBIDDEN || a.resp.RejectedCount != 1 || a.resp.Rejected[0].Field != "device_id" {
		t.Fatalf("report for an enrolled device with a token: %d %s", a.code, a.raw)
	}
	// The camera itself, by its certificate, is accepted.
	before := len(e.pub.events)
	a = e.post(WithDevice(context.Background(), "cam-1"), PathReport, "application/json", rep)
	if a.code != 200 || a.resp.Accepted != 1 || e.pub.events[before].Provenance != "device-cert:cam-1" {
		t.Fatalf("report by certificate: %d %s", a.code, a.raw)
	}
	// A sensor reports about the camera with its certificate.
	a = e.post(WithObserver(context.Background(), "sensor-1"), PathEvents, "application/x-ndjson", []byte(failedLogin("cam-1", now)))
	if last := e.pub.events[len(e.pub.events)-1]; a.code != 200 || last.Provenance != "sensor-cert:sensor-1" || last.DeviceID != "cam-1" {
		t.Fatalf("sensor: %d %s %+v", a.code, a.raw, last)
	}
}

// TestBoundToken checks that a token bound to devices posts only for them.
func TestBoundToken(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := auth.NewContext(context.Background(), auth.Token{Name: "cams", Role: auth.RoleAgent, Devices: []string{"cam-2"}})
	noDevice := `{"time":"2026-11-22T03:15:00Z","kind":"auth"}` + "\n"
	a := e.post(ctx, PathEvents, "application/x-ndjson", []byte(failedLogin("cam-2", now)+failedLogin("cam-3", now)+noDevice))
	if a.code != 200 || a.resp.Accepted != 1 || a.resp.RejectedCount != 2 ||
		!strings.Contains(a.resp.Rejected[0].Error, "bound to other devices") || !strings.Contains(a.resp.Rejected[1].Error, "must name one") {
		t.Fatalf("%d %s", a.code, a.raw)
	}
	rep := []byte(`{"version":"1","device_id":"cam-3","time":"2026-11-22T03:15:00Z","health":{"cpu_pct":1,"memory_pct":2,"disk_pct":3}}`)
	if a := e.post(ctx, PathReport, "application/json", rep); a.code != 403 {
		t.Fatalf("report for another device: %d %s", a.code, a.raw)
	}
}

// TestFutureTimesRejected checks item 11: a time beyond the allowed clock
// skew is rejected with its line, a time within it is accepted.
func TestFutureTimesRejected(t *testing.T) {
	e := newEnv(t, Options{MaxFuture: 5 * time.Minute})
	body := failedLogin("d1", now.Add(4*time.Minute)) + failedLogin("d1", now.Add(6*time.Minute)) +
		`{"time":"9999-12-31T23:59:59Z","device_id":"d1","kind":"auth"}` + "\n" + failedLogin("d1", now.AddDate(-1, 0, 0))
	a := e.post(context.Background(), PathEvents, "application/x-ndjson", []byte(body))
	if a.code != 200 || a.resp.Accepted != 2 || a.resp.RejectedCount != 2 ||
		a.resp.Rejected[0].Line != 2 || a.resp.Rejected[0].Field != "time" || !strings.Contains(a.resp.Rejected[0].Error, "ahead of the server's clock") ||
		a.resp.Rejected[1].Line != 3 {
		t.Fatalf("%d %s", a.code, a.raw)
	}
	// Reports: a future security event is dropped, a future report refused.
	rep := fmt.Sprintf(`{"version":"1","device_id":"d1","time":%q,"events":[{"time":%q,"kind":"auth"},{"time":"9999-12-31T00:00:00Z","kind":"auth"}]}`,
		now.Format(time.RFC3339), now.Format(time.RFC3339))
	a = e.post(context.Background(), PathReport, "application/json", []byte(rep))
	if a.code != 200 || a.resp.Accepted != 1 || a.resp.RejectedCount != 1 || a.resp.Rejected[0].Field != "events[1].time" {
		t.Fatalf("report: %d %s", a.code, a.raw)
	}
	rep = fmt.Sprintf(`{"version":"1","device_id":"d1","time":%q,"health":{"cpu_pct":1,"memory_pct":2,"disk_pct":3}}`, now.Add(time.Hour).Format(time.RFC3339))
	if a = e.post(context.Background(), PathReport, "application/json", []byte(rep)); a.code != 400 || a.resp.Rejected[0].Field != "time" {
		t.Fatalf("future report: %d %s", a.code, a.raw)
	}
	// The bound is configurable; negative turns it off.
	e = newEnv(t, Options{MaxFuture: -1})
	if a := e.post(context.Background(), PathEvents, "application/x-ndjson", []byte(failedLogin("d1", now.Add(time.Hour)))); a.code != 200 {
		t.Fatalf("no bound: %d %s", a.code, a.raw)
	}
}

// TestCredentialsRedacted checks that a token typed on a command line is
// not published (issue 14 item 3), in bulk events and reports, and that
// an extra pattern applies.
func TestCredentialsRedacted(t *testing.T) {
	red, err := ingest.NewRedactor([]string{`SN[0-9]{8}`})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, Options{Redactor: red})
	const secret = "vgl_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0cw"
	body := `{"time":"2026-11-22T03:15:00Z","device_id":"d1","kind":"process","process.command_line":"curl -H 'Authorization: Bearer ` + secret + `' https://admin:pw@10.0.0.1/ SN12345678"}` + "\n"
	if a := e.post(context.Background(), PathEvents, "application/x-ndjson", []byte(body)); a.code != 200 {
		t.Fatalf("%d %s", a.code, a.raw)
	}
	rep := `{"version":"1","device_id":"d1","time":"2026-11-22T03:15:00Z","events":[{"time":"2026-11-22T03:15:00Z","kind":"process","fields":{"process.command_line":"vigil-agent --token ` + secret + `"}}]}`
	if a := e.post(context.Background(), PathReport, "application/json", []byte(rep)); a.code != 200 {
		t.Fatalf("%d %s", a.code, a.raw)
	}
	if len(e.pub.events) != 2 {
		t.Fatalf("published %d events", len(e.pub.events))
	}
	for _, ev := range e.pub.events {
		cl, _ := ev.FieldString("process.command_line")
		if strings.Contains(cl, secret[4:]) || strings.Contains(cl, "admin:pw") || strings.Contains(cl, "12345678") || !strings.Contains(cl, ingest.Redacted) {
			t.Errorf("command line published as %q", cl)
		}
	}
}

// TestBadBodyMemoryBounded is item 5: a body of 12 MiB of "{}" lines (4
// million bad items) used to cost an error object per line and an event
// per line ahead of decoding, over a gigabyte. The answer lists the first
// rejections and counts them all; the request allocates a few times the
// body, not a gigabyte.
func TestBadBodyMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("a 12 MiB body")
	}
	e := newEnv(t, Options{})
	const lines = 4 << 20
	body := []byte(strings.Repeat("{}\n", lines))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	a := e.post(context.Background(), PathEvents, "application/x-ndjson", body)
	runtime.ReadMemStats(&after)
	if a.code != 400 || a.resp.RejectedCount != lines || len(a.resp.Rejected) != bulk.DefaultMaxErrors {
		t.Fatalf("%d count %d listed %d", a.code, a.resp.RejectedCount, len(a.resp.Rejected))
	}
	// 25 MiB measured (48 MiB under -race, whose shadow memory counts
	// too); the old code allocated 1,177 MiB, 98 times the body. The bound
	// leaves room for the race detector and the test's own goroutines.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16*uint64(len(body)) {
		t.Fatalf("the request allocated %d MiB for a body of %d MiB", alloc>>20, len(body)>>20)
	} else {
		t.Logf("allocated %d MiB for a body of %d MiB", alloc>>20, len(body)>>20)
	}
}

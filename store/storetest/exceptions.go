package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

func exception(id string, created time.Time) vigil.Exception {
	return vigil.Exception{ID: id, RuleID: "rule-1", DeviceID: "cam-1", Field: "source.ip", Value: "10.0.0.5",
		Expires: created.Add(24 * time.Hour), Reason: "scanner of the IT team", Author: "token:alice", Created: created}
}

// testExceptions checks alert exceptions: round trip with full time
// precision, list order, replace, delete, ENOTFOUND, EINVALID for an
// exception that fails Check.
func testExceptions(t *testing.T, s store.Store) {
	if got, err := s.ListExceptions(ctx(t)); err != nil || len(got) != 0 {
		t.Fatalf("ListExceptions on an empty store: %v, %v", got, err)
	}
	if _, err := s.GetException(ctx(t), "nope"); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Fatalf("GetException of a missing one: %v, want ENOTFOUND", err)
	}
	if err := s.DeleteException(ctx(t), "nope"); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Fatalf("DeleteException of a missing one: %v, want ENOTFOUND", err)
	}
	b := exception("exc-b", base.In(elsewhere))
	a := exception("exc-a", base.Add(time.Minute))
	a.DeviceID, a.Field, a.Value, a.Class, a.Vendor, a.Model = "", "", "", "camera", "Acme", "X1"
	c := exception("exc-c", base) // same Created as b: by id
	for _, e := range []vigil.Exception{a, b, c} {
		must(t, s.PutException(ctx(t), e), "PutException "+e.ID)
	}
	got, err := s.GetException(ctx(t), "exc-b")
	must(t, err, "GetException")
	b.Created, b.Expires = b.Created.UTC(), b.Expires.UTC()
	deepEqual(t, "exception", got, b)
	list, err := s.ListExceptions(ctx(t))
	must(t, err, "ListExceptions")
	var ids []string
	for _, e := range list {
		ids = append(ids, e.ID)
	}
	deepEqual(t, "exception order", ids, []string{"exc-b", "exc-c", "exc-a"})

	c.Reason = "changed"
	must(t, s.PutException(ctx(t), c), "PutException replace")
	got, err = s.GetException(ctx(t), "exc-c")
	if err != nil || got.Reason != "changed" {
		t.Fatalf("after replace: %v %q", err, got.Reason)
	}
	must(t, s.DeleteException(ctx(t), "exc-c"), "DeleteException")
	if _, err := s.GetException(ctx(t), "exc-c"); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Fatalf("GetException after delete: %v, want ENOTFOUND", err)
	}
	for name, e := range map[string]vigil.Exception{
		"no rule":   {ID: "x", DeviceID: "d", Expires: base, Reason: "r", Author: "a"},
		"no scope":  {ID: "x", RuleID: "r", Expires: base, Reason: "r", Author: "a"},
		"no expiry": {ID: "x", RuleID: "r", DeviceID: "d", Reason: "r", Author: "a"},
		"no reason": {ID: "x", RuleID: "r", DeviceID: "d", Expires: base, Author: "a"},
		"no id":     {RuleID: "r", DeviceID: "d", Expires: base, Reason: "r", Author: "a"},
	} {
		if err := s.PutException(ctx(t), e); vigil.ErrorCode(err) != vigil.EINVALID {
			t.Errorf("PutException with %s: %v, want EINVALID", name, err)
		}
	}
}

// testExceptionCounters checks RecordSuppressed: concurrent increments
// all count, the latest time and alert win whatever the order they come
// in, and a deleted exception is ENOTFOUND.
func testExceptionCounters(t *testing.T, s store.Store) {
	e := exception("exc-1", base)
	must(t, s.PutException(ctx(t), e), "PutException")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			at := base.Add(time.Duration(i) * time.Second)
			if err := s.RecordSuppressed(ctx(t), "exc-1", 2, at, "alert "+at.Format(time.TimeOnly)); err != nil {
				t.Errorf("RecordSuppressed: %v", err)
			}
		}()
	}
	wg.Wait()
	got, err := s.GetException(ctx(t), "exc-1")
	must(t, err, "GetException")
	last := base.Add(19 * time.Second)
	if got.Suppressed != 40 || !got.LastSuppressed.Equal(last) || got.LastAlert != "alert "+last.Format(time.TimeOnly) {
		t.Fatalf("counters: %d %v %q, want 40 %v and the latest alert", got.Suppressed, got.LastSuppressed, got.LastAlert, last)
	}
	// An older hit counts but does not move the latest.
	must(t, s.RecordSuppressed(ctx(t), "exc-1", 1, base, "older"), "RecordSuppressed older")
	got, _ = s.GetException(ctx(t), "exc-1")
	if got.Suppressed != 41 || !got.LastSuppressed.Equal(last) || got.LastAlert == "older" {
		t.Fatalf("after an older hit: %d %v %q", got.Suppressed, got.LastSuppressed, got.LastAlert)
	}
	list, err := s.ListExceptions(ctx(t))
	if err != nil || len(list) != 1 || list[0].Suppressed != 41 {
		t.Fatalf("ListExceptions shows the counters: %v %+v", err, list)
	}
	must(t, s.DeleteException(ctx(t), "exc-1"), "DeleteException")
	if err := s.RecordSuppressed(ctx(t), "exc-1", 1, base, "x"); vigil.ErrorCode(err) != vigil.ENOTFOUND {
		t.Fatalf("RecordSuppressed on a deleted exception: %v, want ENOTFOUND", err)
	}
}

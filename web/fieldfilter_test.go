package web

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestFieldFiltersBounded: a list of events takes at most 8 field
// filters (each is evaluated on every event read).
func TestFieldFiltersBounded(t *testing.T) {
	e := newEnv(t, nil)
	q := "/api/v1/events?limit=5"
	for i := range 8 {
		q += "&field.f" + strconv.Itoa(i) + "=x"
	}
	if code, body, _ := e.do("GET", q, "viewer", ""); code != http.StatusOK {
		t.Fatalf("8 field filters: %d %s", code, body)
	}
	if code, body, _ := e.do("GET", q+"&field.f8=x", "viewer", ""); code != http.StatusBadRequest || !strings.Contains(string(body), "at most 8") {
		t.Fatalf("9 field filters: %d %s", code, body)
	}
}

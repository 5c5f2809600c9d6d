package console

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil"
)

func TestPriorityDisplay(t *testing.T) {
	for _, c := range []struct {
		p    *vigil.Priority
		want string
	}{{nil, "prio-none"}, {&vigil.Priority{Score: 100}, "prio-hi"}, {&vigil.Priority{Score: 70}, "prio-hi"},
		{&vigil.Priority{Score: 69}, "prio-mid"}, {&vigil.Priority{Score: 45}, "prio-mid"}, {&vigil.Priority{Score: 44}, "prio-lo"}, {&vigil.Priority{}, "prio-lo"}} {
		if got := prioClass(c.p); got != c.want {
			t.Errorf("prioClass(%v) = %s, want %s", c.p, got, c.want)
		}
	}
	for f, want := range map[vigil.PriorityFactor]string{{Name: "severity", Points: 45}: "+45", {Name: "criticality", Points: -10}: "-10",
		{Name: "exposure", Points: 0}: "+0", {Name: "confidence", Points: 0.7}: "×0.70"} {
		if got := factorPoints(f); got != want {
			t.Errorf("factorPoints(%+v) = %s, want %s", f, got, want)
		}
	}
	incs := []vigil.Incident{{Priority: &vigil.Priority{Score: 90}}, {Priority: &vigil.Priority{Score: 70}}, {Priority: &vigil.Priority{Score: 50}},
		{Priority: &vigil.Priority{Score: 0}}, {}}
	got := byPriority(incs)
	want := []countRow{{"70–100", 2, "prio-hi"}, {"45–69", 1, "prio-mid"}, {"0–44", 1, "prio-lo"}, {"none", 1, "prio-none"}}
	if len(got) != len(want) {
		t.Fatalf("byPriority = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("byPriority[%d] = %v, want %v", i, got[i], want[i])
		}
	}
	if got := byPriority(nil); len(got) != 3 {
		t.Errorf("byPriority(nil) = %v, want the three bands without none", got)
	}
}

func TestListSort(t *testing.T) {
	for q, want := range map[string]string{"": "time", "sort=priority": "priority", "sort=time": "time"} {
		v, _ := url.ParseQuery(q)
		if got, err := listSort(v, "time"); err != nil || got != want {
			t.Errorf("listSort(%q) = %q %v, want %q", q, got, err, want)
		}
	}
	if got, _ := listSort(url.Values{}, "priority"); got != "priority" {
		t.Errorf("default not kept: %q", got)
	}
	if _, err := listSort(url.Values{"sort": {"size"}}, "time"); vigil.ErrorCode(err) != vigil.EINVALID {
		t.Errorf("sort=size: %v, want EINVALID", err)
	}
}

// TestCreateExceptionBadExpiry: a hand-made expiry that is not RFC 3339 is
// refused before the API is called, saying what is wrong.
func TestCreateExceptionBadExpiry(t *testing.T) {
	c := &Console{}
	r := httptest.NewRequest("POST", "/exceptions", strings.NewReader("rule=r&device=d&reason=x&expires=tomorrow"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	err := c.createException(httptest.NewRecorder(), r, nil)
	if vigil.ErrorCode(err) != vigil.EINVALID || !strings.Contains(vigil.ErrorMessage(err), `expires "tomorrow"`) {
		t.Fatalf("bad expiry: %v", err)
	}
}

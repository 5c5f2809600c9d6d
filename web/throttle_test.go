package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/auth"
)

// stepClock is a clock the test moves.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *stepClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestFailedAuthThrottled: a client guessing tokens gets 429 with
// Retry-After after the burst, whatever it sends then, while another
// client's good token still works; a try comes back after Every.
func TestFailedAuthThrottled(t *testing.T) {
	clock := &stepClock{t: now}
	e := newEnv(t, func(o *Options) {
		o.Clock = clock
		o.AuthThrottle = AuthThrottle{Burst: 5, Every: 2 * time.Second}
	})
	send := func(remote, token string) *httptest.ResponseRecorder {
		t.Helper()
		req := httptest.NewRequestWithContext(context.Background(), "GET", "/api/v1/devices", nil)
		req.RemoteAddr = remote
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, req)
		return rec
	}
	const attacker, other = "203.0.113.7:40000", "198.51.100.2:50000"
	for i := range 5 {
		if rec := send(attacker, "vgl_guess"); rec.Code != http.StatusUnauthorized {
			t.Fatalf("bad token %d: %d, want 401", i+1, rec.Code)
		}
	}
	for i := range 1200 {
		rec := send(attacker, "vgl_guess")
		if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") != "2" {
			t.Fatalf("bad token %d after the burst: %d Retry-After %q, want 429 and 2", i+6, rec.Code, rec.Header().Get("Retry-After"))
		}
	}
	// Not even a good token is checked while throttled: the client is
	// told to wait.
	if rec := send(attacker, e.tok[auth.RoleViewer]); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("throttled client with a good token: %d, want 429", rec.Code)
	}
	// Another client is not affected, bad token or good.
	if rec := send(other, e.tok[auth.RoleViewer]); rec.Code != http.StatusOK {
		t.Fatalf("other client with a good token: %d, want 200", rec.Code)
	}
	if rec := send(other, "vgl_typo"); rec.Code != http.StatusUnauthorized {
		t.Fatalf("other client's first bad token: %d, want 401", rec.Code)
	}
	// The same IPv6 /64 is one client.
	for i := range 5 {
		send("[2001:db8:1:2::"+string(rune('a'+i))+"]:1000", "vgl_guess")
	}
	if rec := send("[2001:db8:1:2::ffff]:1000", "vgl_guess"); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("a sixth bad token from the same /64: %d, want 429", rec.Code)
	}
	// One more try every 2 s.
	clock.add(2 * time.Second)
	if rec := send(attacker, e.tok[auth.RoleViewer]); rec.Code != http.StatusOK {
		t.Fatalf("after the wait, a good token: %d, want 200", rec.Code)
	}
	if rec := send(attacker, "vgl_guess"); rec.Code != http.StatusUnauthorized {
		t.Fatalf("after the wait, a bad token: %d, want 401", rec.Code)
	}
	if rec := send(attacker, "vgl_guess"); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("second bad token after the wait: %d, want 429", rec.Code)
	}
}

// TestFailLimiterBounded: a flood of addresses does not grow the
// throttle's memory without bound.
func TestFailLimiterBounded(t *testing.T) {
	l := newFailLimiter(AuthThrottle{})
	for i := range 3 * maxThrottled {
		l.fail(clientKey("10."+strconv.Itoa(i>>16)+"."+strconv.Itoa(i>>8&255)+"."+strconv.Itoa(i&255)+":1"), now)
	}
	if n := len(l.buckets); n > maxThrottled {
		t.Fatalf("%d buckets, want at most %d", n, maxThrottled)
	}
}

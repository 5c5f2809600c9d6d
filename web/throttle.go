package web

import (
	"math"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// Defaults of the failed-authentication throttle (Options.AuthThrottle).
const (
	DefaultAuthBurst = 20
	DefaultAuthEvery = time.Second
	// maxThrottled bounds the client addresses the throttle remembers.
	maxThrottled = 10000
)

// AuthThrottle limits failed authentications per client address with a
// token bucket: each failure takes one token, a token comes back every
// Every, and at most Burst are kept. A client without a token is answered
// 429 with Retry-After, its credentials not even checked, until a token
// comes back. Successful authentications take nothing, and each client
// address has its own bucket, so other clients are not affected.
type AuthThrottle struct {
	// Burst is how many failures in a row a client may make (default
	// DefaultAuthBurst; negative turns the throttle off).
	Burst int
	// Every is how often a client gets one more try (default
	// DefaultAuthEvery).
	Every time.Duration
}

// failLimiter is the throttle's state: one bucket per client key.
type failLimiter struct {
	burst float64
	every time.Duration

	mu      sync.Mutex
	buckets map[netip.Prefix]*failBucket
}

type failBucket struct {
	tokens float64
	at     time.Time
}

// newFailLimiter returns nil when the throttle is off.
func newFailLimiter(c AuthThrottle) *failLimiter {
	if c.Burst < 0 {
		return nil
	}
	if c.Burst == 0 {
		c.Burst = DefaultAuthBurst
	}
	if c.Every <= 0 {
		c.Every = DefaultAuthEvery
	}
	return &failLimiter{burst: float64(c.Burst), every: c.Every, buckets: map[netip.Prefix]*failBucket{}}
}

// clientKey is the throttled unit of a request's remote address: the
// address itself for IPv4, its /64 for IPv6 (one host has a whole /64).
// Forwarding headers are not trusted.
func clientKey(remote string) netip.Prefix {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}
	}
	ip = ip.Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// refill brings b's tokens up to now. Callers hold l.mu.
func (l *failLimiter) refill(b *failBucket, now time.Time) {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = math.Min(l.burst, b.tokens+float64(d)/float64(l.every))
	}
	b.at = now
}

// wait returns how long the client of key must wait before it may try
// again, 0 when it may try now.
func (l *failLimiter) wait(key netip.Prefix, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		return 0
	}
	l.refill(b, now)
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) * float64(l.every))
}

// fail takes a token from key's bucket and reports whether the client is
// throttled from now on.
func (l *failLimiter) fail(key netip.Prefix, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxThrottled {
			l.prune(now)
		}
		b = &failBucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	l.refill(b, now)
	b.tokens = math.Max(0, b.tokens-1)
	return b.tokens < 1
}

// prune forgets the buckets that are full again (they behave as new
// ones); when every bucket is still in use, it forgets them all, so that
// memory stays bounded whatever the number of addresses. Callers hold
// l.mu.
func (l *failLimiter) prune(now time.Time) {
	for k, b := range l.buckets {
		l.refill(b, now)
		if b.tokens >= l.burst {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxThrottled {
		clear(l.buckets)
	}
}

// retryAfter is a Retry-After value in whole seconds, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

package web

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// query reads a request's query parameters, rejecting unknown ones so a
// typo ("devce=") is an error instead of a silently unfiltered list.
type query struct {
	v     url.Values
	now   time.Time
	err   error
	known []string
}

// newQuery checks that every parameter is one of known, or starts with one
// of the known prefixes (entries ending in ".").
func newQuery(u *url.URL, now time.Time, known ...string) *query {
	v, err := url.ParseQuery(u.RawQuery)
	q := &query{v: v, now: now, known: known}
	if err != nil {
		q.fail(vigil.Errorf(vigil.EINVALID, "cannot parse query string: %v", err))
		return q
	}
	for k := range q.v {
		ok := slices.ContainsFunc(known, func(n string) bool {
			if strings.HasSuffix(n, ".") {
				return strings.HasPrefix(k, n) && len(k) > len(n)
			}
			return n == k
		})
		if !ok {
			q.fail(vigil.Errorf(vigil.EINVALID, "unknown query parameter %q (known: %s)", k, strings.Join(known, ", ")))
			break
		}
	}
	return q
}

func (q *query) fail(err error) {
	if q.err == nil {
		q.err = err
	}
}

// str returns a parameter given at most once.
func (q *query) str(name string) string {
	vs := q.v[name]
	if len(vs) > 1 {
		q.fail(vigil.Errorf(vigil.EINVALID, "query parameter %q is given %d times", name, len(vs)))
	}
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// page reads limit and cursor.
func (q *query) page() store.Page {
	p := store.Page{Cursor: q.str("cursor")}
	if s := q.str("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			q.fail(vigil.Errorf(vigil.EINVALID, "limit %q: want a number from 1 to 1000", s))
		}
		p.Limit = n
	}
	return p
}

// time reads an RFC 3339 time, or a Go duration meaning that long ago
// ("15m", "24h").
func (q *query) time(name string) time.Time {
	s := q.str(name)
	if s == "" {
		return time.Time{}
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return q.now.Add(-d)
	}
	q.fail(vigil.Errorf(vigil.EINVALID, "%s %q: want an RFC 3339 time (2026-01-02T15:04:05Z) or a duration ago (15m, 24h)", name, s))
	return time.Time{}
}

// severity reads a severity name or number.
func (q *query) severity(name string) vigil.Severity {
	s := q.str(name)
	if s == "" {
		return 0
	}
	sev, err := vigil.ParseSeverity(s)
	if err != nil {
		q.fail(vigil.Errorf(vigil.EINVALID, "%s: %v", name, err))
	}
	return sev
}

// prefixed returns the parameters that start with prefix, without it.
func (q *query) prefixed(prefix string) map[string]string {
	var out map[string]string
	for k := range q.v {
		name, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		if len(out) == maxPrefixed {
			q.fail(vigil.Errorf(vigil.EINVALID, "at most %d %s<name> parameters", maxPrefixed, prefix))
			return nil
		}
		out[name] = q.str(k)
	}
	return out
}

// maxPrefixed bounds the parameters of one prefix (field filters): each
// is evaluated on every event a list reads.
const maxPrefixed = 8

// timeRange checks since < until when both are set.
func (q *query) timeRange(since, until time.Time) {
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		q.fail(vigil.Errorf(vigil.EINVALID, "since (%s) must be before until (%s)", since.Format(time.RFC3339Nano), until.Format(time.RFC3339Nano)))
	}
}

// sort checks a sort parameter (store.CheckSort).
func (q *query) sort(v string) {
	if err := store.CheckSort(v); err != nil {
		q.fail(err)
	}
}

package store

import (
	"encoding/base64"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
)

// Page sizes every implementation uses (see Page).
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Size returns the number of items a page holds: DefaultLimit for 0, at
// most MaxLimit. EINVALID for a negative limit.
func (p Page) Size() (int, error) {
	switch {
	case p.Limit < 0:
		return 0, vigil.Errorf(vigil.EINVALID, "page limit %d is negative", p.Limit)
	case p.Limit == 0:
		return DefaultLimit, nil
	case p.Limit > MaxLimit:
		return MaxLimit, nil
	}
	return p.Limit, nil
}

// EncodeCursor makes a page cursor from the sort key of a page's last row:
// a number (time or sequence) and a text tiebreak, base64-encoded so
// callers treat it as opaque.
func EncodeCursor(n int64, s string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(n, 10) + ":" + s))
}

// DecodeCursor reads a cursor EncodeCursor made. EINVALID when it is not one.
func DecodeCursor(c string) (int64, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		ns, s, ok := strings.Cut(string(b), ":")
		if ok {
			n, err := strconv.ParseInt(ns, 10, 64)
			if err == nil {
				return n, s, nil
			}
		}
	}
	return 0, "", vigil.Errorf(vigil.EINVALID, "malformed page cursor %q", c)
}

var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// Nanos returns t as Unix nanoseconds, clamped to the int64 range (the
// zero time sorts first): the time column of every implementation.
func Nanos(t time.Time) int64 {
	if t.Before(minTime) {
		return math.MinInt64
	}
	if t.After(maxTime) {
		return math.MaxInt64
	}
	return t.UnixNano()
}

// NotFound is the ENOTFOUND error for a missing object.
func NotFound(what, id string) error {
	return vigil.Errorf(vigil.ENOTFOUND, "%s %q not found", what, id)
}

// NormalizeFields turns the lists that JSON decoding gives ([]any of
// strings) back into the []string that vigil.Event Fields hold, in place.
func NormalizeFields(m map[string]any) {
	for k, v := range m {
		l, ok := v.([]any)
		if !ok {
			continue
		}
		ss := make([]string, 0, len(l))
		for _, x := range l {
			s, ok := x.(string)
			if !ok {
				ss = nil
				break
			}
			ss = append(ss, s)
		}
		if ss != nil {
			m[k] = ss
		}
	}
}

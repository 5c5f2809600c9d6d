package hunt

import "github.com/vigil-iot/vigil"

// Matches reports whether ev satisfies e, read from the event itself (the
// same semantics as the columnar executor: an absent field fails every
// comparison; NOT turns that into a match).
func Matches(e Expr, ev *vigil.Event) bool {
	switch v := e.(type) {
	case nil, *All:
		return true
	case *And:
		return Matches(v.L, ev) && Matches(v.R, ev)
	case *Or:
		return Matches(v.L, ev) || Matches(v.R, ev)
	case *Not:
		return !Matches(v.X, ev)
	case *Cmp:
		if v.Field == TimeField {
			return v.timeHolds(ev.Time.UnixNano())
		}
		val, ok := ev.Field(canonical(v.Field))
		if !ok {
			return false
		}
		kind, text := valueOf(val)
		return v.holds(kind, text)
	}
	return false
}

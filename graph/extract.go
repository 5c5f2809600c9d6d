package graph

import (
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// Extractor finds the entities and relations of events by its rules. It
// is safe for concurrent use (a Batch is not).
type Extractor struct {
	byKind map[string][]*rule // rules whose when names event.kind, by kind
	any    []*rule            // the others
	ends   int                // distinct ends: an event's values of each are computed once
}

// rule is a Rule with its ends numbered.
type rule struct {
	*Rule
	from, to int
}

// NewExtractor compiles rules (from ParseRules).
func NewExtractor(rules []Rule) *Extractor {
	x := &Extractor{byKind: map[string][]*rule{}}
	ends := map[[5]string]int{}
	end := func(e End) int {
		k := [5]string{e.Type, e.Field, e.Value, e.Decode, e.Normalize}
		if i, ok := ends[k]; ok {
			return i
		}
		ends[k] = len(ends)
		return len(ends) - 1
	}
	for i := range rules {
		r := &rule{Rule: &rules[i], from: end(rules[i].From), to: end(rules[i].To)}
		kinds := r.When["event.kind"]
		if len(kinds) == 0 {
			x.any = append(x.any, r)
			continue
		}
		for _, k := range kinds {
			x.byKind[k] = append(x.byKind[k], r)
		}
	}
	x.ends = len(ends)
	return x
}

// DefaultExtractor returns an extractor of the built-in rules.
func DefaultExtractor() *Extractor {
	rules, err := ParseRules("builtin:graph/rules.yaml", DefaultRules)
	if err != nil {
		panic(err) // a bug: the built-in rules are tested
	}
	return NewExtractor(rules)
}

// Batch aggregates the entities and relations of events in memory until
// Flush gives them as one store.GraphBatch.
type Batch struct {
	ents   map[string]*store.Entity
	rels   map[relKey]*store.Relation
	events int
	keys   []string // scratch: keys of one event
	// memo holds the values of each end for the event being added
	// (valid when done[i]).
	memo [][]string
	done []bool
}

type relKey struct{ from, rel, to string }

// NewBatch returns an empty batch.
func NewBatch() *Batch {
	return &Batch{ents: map[string]*store.Entity{}, rels: map[relKey]*store.Relation{}}
}

// Len returns how many relations the batch holds.
func (b *Batch) Len() int { return len(b.rels) }

// Events returns how many events were added since the last Flush.
func (b *Batch) Events() int { return b.events }

// Add adds what ev shows to b. An event without a time shows nothing.
func (x *Extractor) Add(b *Batch, ev *vigil.Event) {
	if ev.Time.IsZero() {
		return
	}
	b.events++
	b.keys = b.keys[:0]
	if len(b.memo) < x.ends {
		b.memo, b.done = make([][]string, x.ends), make([]bool, x.ends)
	}
	clear(b.done)
	for _, r := range x.byKind[ev.Kind] {
		x.apply(b, r, ev)
	}
	for _, r := range x.any {
		x.apply(b, r, ev)
	}
	// Each entity counts once per event that names it.
	for i, k := range b.keys {
		dup := false
		for _, o := range b.keys[:i] {
			if o == k {
				dup = true
				break
			}
		}
		if !dup {
			b.entity(k, ev.Time)
		}
	}
}

func (x *Extractor) apply(b *Batch, r *rule, ev *vigil.Event) {
	if !matches(ev, r.When, true) || !matches(ev, r.Unless, false) {
		return
	}
	from := b.values(r.from, &r.From, ev)
	if len(from) == 0 {
		return
	}
	to := b.values(r.to, &r.To, ev)
	for _, f := range from {
		for _, t := range to {
			if f == t {
				continue
			}
			b.relation(f, r.Rel, t, ev)
			b.keys = append(b.keys, f, t)
		}
	}
}

// values returns the values of end i (e) in ev, computed once per event.
func (b *Batch) values(i int, e *End, ev *vigil.Event) []string {
	if !b.done[i] {
		b.memo[i] = e.values(ev, b.memo[i][:0])
		b.done[i] = true
	}
	return b.memo[i]
}

// matches reports whether ev passes conds: with all true, every condition
// holds; with all false, none does.
func matches(ev *vigil.Event, conds map[string][]string, all bool) bool {
	for f, want := range conds {
		v, _ := ev.Field(f)
		s := vigil.ValueString(v)
		hit := false
		for _, w := range want {
			if s == w {
				hit = true
				break
			}
		}
		if hit != all {
			return false
		}
	}
	return true
}

func (b *Batch) entity(k string, t time.Time) {
	if e, ok := b.ents[k]; ok {
		e.Count++
		if t.Before(e.FirstSeen) {
			e.FirstSeen = t
		}
		if t.After(e.LastSeen) {
			e.LastSeen = t
		}
		return
	}
	b.ents[k] = &store.Entity{Key: k, FirstSeen: t, LastSeen: t, Count: 1}
}

func (b *Batch) relation(from, rel, to string, ev *vigil.Event) {
	k := relKey{from, rel, to}
	if r, ok := b.rels[k]; ok {
		store.MergeRelation(r, store.Relation{Count: 1, FirstSeen: ev.Time, LastSeen: ev.Time, FirstEvent: ev.ID, LastEvent: ev.ID})
		return
	}
	b.rels[k] = &store.Relation{From: from, Rel: rel, To: to, FirstSeen: ev.Time, LastSeen: ev.Time, Count: 1, FirstEvent: ev.ID, LastEvent: ev.ID}
}

// Flush returns what the batch holds, sorted (store.MergeGraph), and
// empties it.
func (b *Batch) Flush() store.GraphBatch {
	var out store.GraphBatch
	out.Entities = make([]store.Entity, 0, len(b.ents))
	for _, e := range b.ents {
		out.Entities = append(out.Entities, *e)
	}
	out.Relations = make([]store.Relation, 0, len(b.rels))
	for _, r := range b.rels {
		out.Relations = append(out.Relations, *r)
	}
	clear(b.ents)
	clear(b.rels)
	b.events = 0
	return store.MergeGraph(out)
}

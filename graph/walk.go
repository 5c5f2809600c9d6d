package graph

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// Query asks for the graph around an entity.
type Query struct {
	// Entity is an entity key ("ip:203.0.113.66") or a bare value
	// ("203.0.113.66", "cam-1"): every entity with that value is a root.
	Entity string
	// Depth is how many relations away from the roots to go (default 1,
	// at most MaxDepth).
	Depth int
	// Since keeps relations last seen at or after it.
	Since time.Time
	// Limit bounds the relations returned (default 500, at most
	// store.MaxGraphRelations).
	Limit int
}

// MaxDepth bounds Query.Depth.
const MaxDepth = 5

// View is a part of the graph: its roots, the relations found (nearest
// first, then most recently seen) and the entities they join.
type View struct {
	Roots     []string         `json:"roots"`
	Depth     int              `json:"depth"`
	Since     time.Time        `json:"since,omitzero"`
	Entities  []store.Entity   `json:"entities"`
	Relations []store.Relation `json:"relations"`
	// Truncated says that Limit stopped the walk: more relations exist.
	Truncated bool `json:"truncated,omitempty"`
}

// Resolve returns the keys of the entities s names: s itself when it is a
// key of a known type, else every entity whose value is s. ENOTFOUND when
// the graph has none; EINVALID when s is empty.
func Resolve(ctx context.Context, g store.Graph, s string) ([]string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, vigil.Errorf(vigil.EINVALID, "no entity given: want type:value (ip:10.0.0.7) or a value")
	}
	if typ, _, ok := store.SplitEntityKey(s); ok && IsEntityType(typ) {
		ents, err := g.GetEntities(ctx, []string{s})
		if err != nil {
			return nil, err
		}
		if len(ents) == 0 {
			return nil, vigil.Errorf(vigil.ENOTFOUND, "entity %s is not in the graph", s)
		}
		return []string{s}, nil
	}
	ents, err := g.FindEntities(ctx, s, 20)
	if err != nil {
		return nil, err
	}
	if len(ents) == 0 {
		return nil, vigil.Errorf(vigil.ENOTFOUND, "no entity of value %q in the graph (give type:value, e.g. ip:%s)", s, s)
	}
	keys := make([]string, len(ents))
	for i, e := range ents {
		keys[i] = e.Key
	}
	return keys, nil
}

// Walk returns the graph around q.Entity, breadth first.
func Walk(ctx context.Context, g store.Graph, q Query) (View, error) {
	if q.Depth < 0 || q.Depth > MaxDepth {
		return View{}, vigil.Errorf(vigil.EINVALID, "depth %d: want 1 to %d", q.Depth, MaxDepth)
	}
	if q.Depth == 0 {
		q.Depth = 1
	}
	if q.Limit < 0 {
		return View{}, vigil.Errorf(vigil.EINVALID, "limit %d is negative", q.Limit)
	}
	if q.Limit == 0 {
		q.Limit = 500
	}
	q.Limit = min(q.Limit, store.MaxGraphRelations)
	roots, err := Resolve(ctx, g, q.Entity)
	if err != nil {
		return View{}, err
	}
	v := View{Roots: roots, Depth: q.Depth, Since: q.Since}
	seen := map[string]bool{}
	for _, r := range roots {
		seen[r] = true
	}
	type rk struct{ f, r, t string }
	have := map[rk]bool{}
	frontier := roots
	for d := 0; d < q.Depth && len(frontier) > 0 && !v.Truncated; d++ {
		var next []string
		for chunk := range slices.Chunk(frontier, store.MaxGraphKeys) {
			left := q.Limit - len(v.Relations)
			rels, err := g.GraphRelations(ctx, store.GraphFilter{Keys: chunk, Since: q.Since, Limit: left + 1})
			if err != nil {
				return View{}, err
			}
			for _, r := range rels {
				k := rk{r.From, r.Rel, r.To}
				if have[k] {
					continue
				}
				if len(v.Relations) == q.Limit {
					v.Truncated = true
					break
				}
				have[k] = true
				v.Relations = append(v.Relations, r)
				for _, e := range []string{r.From, r.To} {
					if !seen[e] {
						seen[e] = true
						next = append(next, e)
					}
				}
			}
			if v.Truncated {
				break
			}
		}
		frontier = next
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for chunk := range slices.Chunk(keys, store.MaxGraphKeys) {
		ents, err := g.GetEntities(ctx, chunk)
		if err != nil {
			return View{}, err
		}
		v.Entities = append(v.Entities, ents...)
	}
	if v.Entities == nil {
		v.Entities = []store.Entity{}
	}
	if v.Relations == nil {
		v.Relations = []store.Relation{}
	}
	return v, nil
}

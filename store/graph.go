package store

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigil-iot/vigil"
)

// Entity types of the entity graph. An entity's key is "type:value"
// (EntityKey), as in vigil.Alert.Entities ("ip:10.0.0.7", "user:root").
const (
	EntityDevice     = "device"
	EntityIP         = "ip"
	EntityMAC        = "mac"
	EntityUser       = "user"
	EntityMQTTClient = "mqtt.client_id"
	EntityTopic      = "mqtt.topic"
	EntityBroker     = "broker"
	EntityCoAP       = "coap.resource"
	EntityCert       = "cert"
	EntitySoftware   = "software"
	EntityFile       = "file"
	EntityDomain     = "domain"
)

// MaxEntityKey bounds an entity key; EntityKey cuts longer ones.
const MaxEntityKey = 512

// EntityKey returns the key of the entity of type typ and value v.
func EntityKey(typ, v string) string {
	k := typ + ":" + v
	if len(k) > MaxEntityKey {
		k = strings.ToValidUTF8(k[:MaxEntityKey], "")
	}
	return k
}

// SplitEntityKey returns the type and the value of an entity key. The
// type is what precedes the first colon that is followed by a value; ok
// is false when there is no type or no value.
func SplitEntityKey(key string) (typ, value string, ok bool) {
	typ, value, ok = strings.Cut(key, ":")
	if !ok || typ == "" || value == "" {
		return "", "", false
	}
	return typ, value, true
}

// Entity is one node of the entity graph: how often events named it and
// when first and last.
type Entity struct {
	Key       string    `json:"key"` // "type:value"
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Count     int64     `json:"count"`
}

// Relation is one edge of the entity graph: From Rel To ("device:cam-1"
// logged_in_as "user:root"), with the number of events that showed it,
// when first and last, and the ids of the first and the last of those
// events (the evidence: an edge cites events).
type Relation struct {
	From       string    `json:"from"`
	Rel        string    `json:"rel"`
	To         string    `json:"to"`
	FirstSeen  time.Time `json:"first_seen"`
	LastSeen   time.Time `json:"last_seen"`
	Count      int64     `json:"count"`
	FirstEvent string    `json:"first_event,omitempty"`
	LastEvent  string    `json:"last_event,omitempty"`
}

// GraphBatch is what one PutGraph call merges into the graph.
type GraphBatch struct {
	Entities  []Entity
	Relations []Relation
}

// GraphFilter selects relations. Keys is required.
type GraphFilter struct {
	// Keys are entity keys: relations from or to any of them are selected.
	Keys []string
	// Rels, when set, keeps only these relation names.
	Rels []string
	// Since keeps relations last seen at or after it.
	Since time.Time
	// Limit bounds how many relations are returned, most recently seen
	// first (0: 1000; implementations cap it at MaxGraphRelations).
	Limit int
}

// MaxGraphRelations caps GraphFilter.Limit.
const MaxGraphRelations = 10000

// MaxGraphKeys bounds GraphFilter.Keys and the keys of one GetEntities.
const MaxGraphKeys = 1000

// CheckGraphBatch checks a PutGraph argument: every key is a valid entity
// key (SplitEntityKey) of at most MaxEntityKey bytes, every relation has
// a name, and every time is set. The error (EINVALID) names the first bad
// item.
func CheckGraphBatch(b GraphBatch) error {
	key := func(what, k string) error {
		if _, _, ok := SplitEntityKey(k); !ok || len(k) > MaxEntityKey || !utf8.ValidString(k) || strings.IndexByte(k, 0) >= 0 {
			return vigil.Errorf(vigil.EINVALID, "graph %s: bad entity key %q: want type:value of at most %d bytes of UTF-8 without NUL", what, k, MaxEntityKey)
		}
		return nil
	}
	for i, e := range b.Entities {
		if err := key("entity "+strconv.Itoa(i), e.Key); err != nil {
			return err
		}
		if e.FirstSeen.IsZero() || e.LastSeen.IsZero() {
			return vigil.Errorf(vigil.EINVALID, "graph entity %s has no first or last seen time", e.Key)
		}
	}
	for i, r := range b.Relations {
		if err := key("relation "+strconv.Itoa(i)+" from", r.From); err != nil {
			return err
		}
		if err := key("relation "+strconv.Itoa(i)+" to", r.To); err != nil {
			return err
		}
		if r.Rel == "" || len(r.Rel) > 64 {
			return vigil.Errorf(vigil.EINVALID, "graph relation %s -> %s: name %q, want 1 to 64 bytes", r.From, r.To, r.Rel)
		}
		if r.FirstSeen.IsZero() || r.LastSeen.IsZero() {
			return vigil.Errorf(vigil.EINVALID, "graph relation %s %s %s has no first or last seen time", r.From, r.Rel, r.To)
		}
	}
	return nil
}

// CheckGraphFilter checks a GraphEdges argument and returns its limit.
func CheckGraphFilter(f GraphFilter) (int, error) {
	if len(f.Keys) == 0 {
		return 0, vigil.Errorf(vigil.EINVALID, "graph query needs at least one entity key")
	}
	if len(f.Keys) > MaxGraphKeys {
		return 0, vigil.Errorf(vigil.EINVALID, "graph query of %d entity keys, at most %d", len(f.Keys), MaxGraphKeys)
	}
	if f.Limit < 0 {
		return 0, vigil.Errorf(vigil.EINVALID, "graph query limit %d is negative", f.Limit)
	}
	if f.Limit == 0 {
		return 1000, nil
	}
	return min(f.Limit, MaxGraphRelations), nil
}

// MergeGraph folds the duplicates of a batch into one item each (counts
// added, first seen the earliest, last seen the latest, with their
// events) and sorts entities by key and relations by (from, rel, to), the
// order stores write them in (so that concurrent writers lock rows in
// one order).
func MergeGraph(b GraphBatch) GraphBatch {
	ents := make(map[string]int, len(b.Entities))
	var out GraphBatch
	for _, e := range b.Entities {
		if i, ok := ents[e.Key]; ok {
			o := &out.Entities[i]
			o.Count += e.Count
			if e.FirstSeen.Before(o.FirstSeen) {
				o.FirstSeen = e.FirstSeen
			}
			if e.LastSeen.After(o.LastSeen) {
				o.LastSeen = e.LastSeen
			}
			continue
		}
		ents[e.Key] = len(out.Entities)
		out.Entities = append(out.Entities, e)
	}
	type rk struct{ f, r, t string }
	rels := make(map[rk]int, len(b.Relations))
	for _, r := range b.Relations {
		k := rk{r.From, r.Rel, r.To}
		if i, ok := rels[k]; ok {
			MergeRelation(&out.Relations[i], r)
			continue
		}
		rels[k] = len(out.Relations)
		out.Relations = append(out.Relations, r)
	}
	slices.SortFunc(out.Entities, func(a, b Entity) int { return cmp.Compare(a.Key, b.Key) })
	slices.SortFunc(out.Relations, func(a, b Relation) int {
		return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.Rel, b.Rel), cmp.Compare(a.To, b.To))
	})
	return out
}

// MergeRelation folds r into o, which have the same (from, rel, to).
func MergeRelation(o *Relation, r Relation) {
	o.Count += r.Count
	if r.FirstSeen.Before(o.FirstSeen) || o.FirstEvent == "" && r.FirstSeen.Equal(o.FirstSeen) {
		o.FirstSeen, o.FirstEvent = r.FirstSeen, r.FirstEvent
	}
	if r.LastSeen.After(o.LastSeen) || o.LastEvent == "" && r.LastSeen.Equal(o.LastSeen) {
		o.LastSeen, o.LastEvent = r.LastSeen, r.LastEvent
	}
}

package storetest

import (
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// testGraphMerge checks that PutGraph creates entities and relations and
// merges later batches into them: counts add up, first seen moves earlier
// and last seen later with the events that showed them, duplicates within
// one batch count once each.
func testGraphMerge(t *testing.T, s store.Store) {
	at := func(sec int) time.Time { return base.Add(time.Duration(sec) * time.Second) }
	rel := func(from, r, to string, first, last int, n int64, fe, le string) store.Relation {
		return store.Relation{From: from, Rel: r, To: to, FirstSeen: at(first), LastSeen: at(last), Count: n, FirstEvent: fe, LastEvent: le}
	}
	ent := func(key string, first, last int, n int64) store.Entity {
		return store.Entity{Key: key, FirstSeen: at(first), LastSeen: at(last), Count: n}
	}
	must(t, s.PutGraph(ctx(t), store.GraphBatch{
		Entities: []store.Entity{ent("device:cam-1", 10, 20, 2), ent("user:root", 10, 10, 1), ent("device:cam-1", 5, 15, 1)},
		Relations: []store.Relation{
			rel("device:cam-1", "logged_in_as", "user:root", 10, 10, 1, "e10", "e10"),
			rel("device:cam-1", "logged_in_as", "user:root", 12, 14, 2, "e12", "e14"),
			rel("ip:203.0.113.66", "logged_in_to", "device:cam-1", 10, 20, 3, "e10", "e20"),
		},
	}), "PutGraph 1")
	must(t, s.PutGraph(ctx(t), store.GraphBatch{
		Entities: []store.Entity{ent("device:cam-1", 30, 40, 4), ent("ip:203.0.113.66", 1, 50, 7)},
		Relations: []store.Relation{
			// Earlier first and later last: both ends move, with their events.
			rel("device:cam-1", "logged_in_as", "user:root", 2, 40, 5, "e2", "e40"),
			// Inside the known span: only the count changes.
			rel("ip:203.0.113.66", "logged_in_to", "device:cam-1", 15, 16, 1, "e15", "e16"),
		},
	}), "PutGraph 2")

	ents, err := s.GetEntities(ctx(t), []string{"user:root", "device:cam-1", "ip:203.0.113.66", "device:absent"})
	must(t, err, "GetEntities")
	deepEqual(t, "entities", ents, []store.Entity{ent("device:cam-1", 5, 40, 7), ent("ip:203.0.113.66", 1, 50, 7), ent("user:root", 10, 10, 1)})

	rels, err := s.GraphRelations(ctx(t), store.GraphFilter{Keys: []string{"device:cam-1"}})
	must(t, err, "GraphRelations")
	deepEqual(t, "relations of cam-1", rels, []store.Relation{
		rel("device:cam-1", "logged_in_as", "user:root", 2, 40, 8, "e2", "e40"),
		rel("ip:203.0.113.66", "logged_in_to", "device:cam-1", 10, 20, 4, "e10", "e20"),
	})
}

// testGraphQuery checks the selection of relations: by either end, by
// relation name, by last seen, newest first, limited; and FindEntities.
func testGraphQuery(t *testing.T, s store.Store) {
	var b store.GraphBatch
	for i := range 30 {
		dev := name("device:d", i%3)
		ip := name("ip:10.0.0", i)
		t0 := base.Add(time.Duration(i) * time.Minute).In(elsewhere)
		b.Relations = append(b.Relations,
			store.Relation{From: dev, Rel: "talked_to", To: ip, FirstSeen: t0, LastSeen: t0, Count: 1, FirstEvent: name("e", i), LastEvent: name("e", i)})
		if i%2 == 0 {
			b.Relations = append(b.Relations,
				store.Relation{From: ip, Rel: "resolved", To: "domain:x.example", FirstSeen: t0, LastSeen: t0.Add(time.Second), Count: 1})
		}
		b.Entities = append(b.Entities, store.Entity{Key: dev, FirstSeen: t0, LastSeen: t0, Count: 1}, store.Entity{Key: ip, FirstSeen: t0, LastSeen: t0, Count: 1})
	}
	b.Entities = append(b.Entities, store.Entity{Key: "user:10.0.0-003", FirstSeen: base, LastSeen: base, Count: 1})
	must(t, s.PutGraph(ctx(t), b), "PutGraph")

	rels, err := s.GraphRelations(ctx(t), store.GraphFilter{Keys: []string{"device:d-001"}})
	must(t, err, "GraphRelations")
	if len(rels) != 10 {
		t.Fatalf("relations of d-001: %d, want 10", len(rels))
	}
	for i := 1; i < len(rels); i++ {
		if rels[i].LastSeen.After(rels[i-1].LastSeen) {
			t.Fatalf("relations not newest first: %v then %v", rels[i-1].LastSeen, rels[i].LastSeen)
		}
	}
	if rels[0].To != "ip:10.0.0-028" || !rels[0].LastSeen.Equal(base.Add(28*time.Minute)) {
		t.Fatalf("newest relation of d-001: %+v, want to ip:10.0.0-028 at +28m", rels[0])
	}

	since := base.Add(20 * time.Minute)
	rels, err = s.GraphRelations(ctx(t), store.GraphFilter{Keys: []string{"device:d-001", "domain:x.example"}, Since: since, Limit: 5})
	must(t, err, "GraphRelations since")
	if len(rels) != 5 {
		t.Fatalf("limit 5: %d relations", len(rels))
	}
	for _, r := range rels {
		if r.LastSeen.Before(since) {
			t.Fatalf("relation last seen %v before since %v", r.LastSeen, since)
		}
	}
	rels, err = s.GraphRelations(ctx(t), store.GraphFilter{Keys: []string{"domain:x.example"}, Rels: []string{"resolved"}})
	must(t, err, "GraphRelations by rel")
	if len(rels) != 15 {
		t.Fatalf("resolved relations to x.example: %d, want 15", len(rels))
	}
	for _, r := range rels {
		if r.To != "domain:x.example" || r.Rel != "resolved" {
			t.Fatalf("unexpected relation %+v", r)
		}
	}
	rels, err = s.GraphRelations(ctx(t), store.GraphFilter{Keys: []string{"domain:x.example"}, Rels: []string{"talked_to"}})
	must(t, err, "GraphRelations by other rel")
	if len(rels) != 0 {
		t.Fatalf("talked_to relations of x.example: %v, want none", rels)
	}

	found, err := s.FindEntities(ctx(t), "10.0.0-003", 0)
	must(t, err, "FindEntities")
	sameIDs(t, "FindEntities", ids(found, func(e store.Entity) string { return e.Key }), []string{"ip:10.0.0-003", "user:10.0.0-003"})
	found, err = s.FindEntities(ctx(t), "nothing", 0)
	must(t, err, "FindEntities none")
	if len(found) != 0 {
		t.Fatalf("FindEntities of an unknown value: %v", found)
	}
}

// testGraphInvalid checks that bad batches and filters are EINVALID and
// that a bad batch stores nothing.
func testGraphInvalid(t *testing.T, s store.Store) {
	good := store.Relation{From: "device:a", Rel: "talked_to", To: "ip:1.2.3.4", FirstSeen: base, LastSeen: base, Count: 1}
	for what, b := range map[string]store.GraphBatch{
		"key without type":  {Entities: []store.Entity{{Key: "cam-1", FirstSeen: base, LastSeen: base, Count: 1}}},
		"key without value": {Relations: []store.Relation{good, {From: "device:", Rel: "x", To: "ip:1", FirstSeen: base, LastSeen: base}}},
		"no relation name":  {Relations: []store.Relation{good, {From: "device:a", To: "ip:1", FirstSeen: base, LastSeen: base}}},
		"no time":           {Relations: []store.Relation{good, {From: "device:a", Rel: "x", To: "ip:1"}}},
		"NUL in key":        {Relations: []store.Relation{good, {From: "device:a\x00b", Rel: "x", To: "ip:1", FirstSeen: base, LastSeen: base}}},
	} {
		wantCode(t, s.PutGraph(ctx(t), b), vigil.EINVALID, "PutGraph with "+what)
	}
	rels, err := s.GraphRelations(ctx(t), store.GraphFilter{Keys: []string{"device:a"}})
	must(t, err, "GraphRelations")
	if len(rels) != 0 {
		t.Fatalf("a rejected batch stored %v", rels)
	}
	_, err = s.GraphRelations(ctx(t), store.GraphFilter{})
	wantCode(t, err, vigil.EINVALID, "GraphRelations without keys")
	_, err = s.GraphRelations(ctx(t), store.GraphFilter{Keys: []string{"device:a"}, Limit: -1})
	wantCode(t, err, vigil.EINVALID, "GraphRelations with a negative limit")
	// Hostile values are data, not SQL.
	hostile := "device:a'); DROP TABLE graph_relations; --"
	must(t, s.PutGraph(ctx(t), store.GraphBatch{Relations: []store.Relation{{From: hostile, Rel: "talked_to", To: "ip:1", FirstSeen: base, LastSeen: base, Count: 1}}}), "PutGraph hostile")
	rels, err = s.GraphRelations(ctx(t), store.GraphFilter{Keys: []string{hostile}})
	must(t, err, "GraphRelations hostile")
	if len(rels) != 1 || rels[0].From != hostile {
		t.Fatalf("hostile key: %v", rels)
	}
}

// testGraphConcurrent checks that concurrent batches touching the same
// rows all count (no lost update, no deadlock).
func testGraphConcurrent(t *testing.T, s store.Store) {
	const writers, rounds = 4, 10
	runConcurrently(writers, func(w int) {
		for i := range rounds {
			at := base.Add(time.Duration(w*rounds+i) * time.Second)
			b := store.GraphBatch{
				Entities: []store.Entity{{Key: "device:hub", FirstSeen: at, LastSeen: at, Count: 1}, {Key: "ip:10.9.9.9", FirstSeen: at, LastSeen: at, Count: 1}},
				Relations: []store.Relation{
					{From: "ip:10.9.9.9", Rel: "talked_to", To: "device:hub", FirstSeen: at, LastSeen: at, Count: 1},
					{From: "device:hub", Rel: "talked_to", To: "ip:10.9.9.9", FirstSeen: at, LastSeen: at, Count: 1},
				},
			}
			if err := s.PutGraph(ctx(t), b); err != nil {
				t.Errorf("PutGraph writer %d round %d: %v", w, i, err)
				return
			}
		}
	})
	rels, err := s.GraphRelations(ctx(t), store.GraphFilter{Keys: []string{"device:hub"}})
	must(t, err, "GraphRelations")
	if len(rels) != 2 || rels[0].Count != writers*rounds || rels[1].Count != writers*rounds {
		t.Fatalf("after %d concurrent puts: %+v", writers*rounds, rels)
	}
	ents, err := s.GetEntities(ctx(t), []string{"device:hub"})
	must(t, err, "GetEntities")
	if len(ents) != 1 || ents[0].Count != writers*rounds || !ents[0].FirstSeen.Equal(base) || !ents[0].LastSeen.Equal(base.Add((writers*rounds-1)*time.Second)) {
		t.Fatalf("hub after concurrent puts: %+v", ents)
	}
}

// testGraphRetention checks that DeleteGraphBefore removes what was last
// seen before the cut, keeps the rest, and counts the relations removed.
func testGraphRetention(t *testing.T, s store.Store) {
	at := func(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }
	must(t, s.PutGraph(ctx(t), store.GraphBatch{
		Entities: []store.Entity{
			{Key: "device:old", FirstSeen: at(0), LastSeen: at(5), Count: 1},
			{Key: "device:new", FirstSeen: at(0), LastSeen: at(20), Count: 2},
			{Key: "ip:10.0.0.1", FirstSeen: at(0), LastSeen: at(20), Count: 3},
		},
		Relations: []store.Relation{
			{From: "device:old", Rel: "talked_to", To: "ip:10.0.0.1", FirstSeen: at(0), LastSeen: at(5), Count: 1},
			{From: "device:new", Rel: "talked_to", To: "ip:10.0.0.1", FirstSeen: at(0), LastSeen: at(20), Count: 2},
			{From: "device:new", Rel: "has_ip", To: "ip:10.0.0.1", FirstSeen: at(0), LastSeen: at(10), Count: 1},
		},
	}), "PutGraph")
	n, err := s.DeleteGraphBefore(ctx(t), at(10))
	must(t, err, "DeleteGraphBefore")
	if n != 1 {
		t.Errorf("DeleteGraphBefore removed %d relations, want 1", n)
	}
	rels, err := s.GraphRelations(ctx(t), store.GraphFilter{Keys: []string{"ip:10.0.0.1"}})
	must(t, err, "GraphRelations")
	if len(rels) != 2 || rels[0].From != "device:new" || rels[1].From != "device:new" {
		t.Errorf("after retention: %+v", rels)
	}
	ents, err := s.GetEntities(ctx(t), []string{"device:old", "device:new", "ip:10.0.0.1"})
	must(t, err, "GetEntities")
	sameIDs(t, "entities after retention", ids(ents, func(e store.Entity) string { return e.Key }), []string{"device:new", "ip:10.0.0.1"})
}

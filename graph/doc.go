// Package graph is the pipeline stage that keeps the entity graph: it reads
// every event from the bus (consumer group Group), finds the entities the
// event names and the relations between them by the rules of rules.yaml
// (data, tested as data under testdata/), aggregates a batch in memory and
// merges it into the store (store.Graph) in one write. Walk answers "what
// is around this entity" from the store.
//
// The stage only records what events show: it makes no detection and no
// judgement (package investigate reads the graph to do that). Delivery is
// at least once, so an event the bus hands again after a failure counts
// twice in the counts; first and last seen are exact.
package graph

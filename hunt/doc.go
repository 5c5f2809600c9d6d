// Package hunt is Vigil's hunting over stored events: a query language (a
// subset of Splunk's SPL: field predicates with wildcards, CIDR, ranges and
// regular expressions, AND/OR/NOT, and a pipeline of stats, top, bin,
// sort, head and table), its executor over columnar segments of the event
// history, the sealer that makes those segments from stored events, and
// retro-hunts (Sigma rules or indicators run over history as a job).
//
// It owns the encoding of segments; the store keeps them as opaque blobs
// (store.Analytics). It makes no detection decision of its own: a
// retro-hunt runs detect/sigma and publishes what it finds on the alerts
// stream, marked retro, so alerts go through the normal alert stage.
//
// See docs/hunting.md.
package hunt

// Package intel is the IOC-matching detector: it looks up every event's
// addresses, domain names, URLs and file hashes in an indicator Set built
// from the feed catalog, and raises an alert naming the indicator, its feed,
// its confidence and the event.
//
// A Set is immutable once built; the Detector holds it behind an atomic
// pointer, so Load (a feed refresh) swaps in a new one without stopping
// detection. Lookups do not allocate when nothing matches.
//
// It does not import, store or refresh feeds (feeds/catalog does) and keeps
// no per-event state.
package intel

// Package catalog keeps the indicators of every configured feed: it imports
// a feed from a file or URL (or a TAXII server), detecting the format when
// it is not given, replaces that feed's indicators, saves them under the
// data directory (<dir>/intel/<feed>.json, one file per feed, written
// atomically), and tells a subscriber (the intel detector) the new full set.
// Run re-imports feeds whose refresh interval has passed.
//
// It does not match events; that is detect/intel's job.
package catalog

// Package misp imports MISP events (the JSON of one event, with or without
// its "Event" wrapper) and MISP feeds (manifest.json plus one <uuid>.json
// per event). Only attributes flagged to_ids become indicators; the rest
// (links, text, file names) are counted as skipped. The confidence comes
// from an osint:certainty tag when present.
//
// Fetching is the caller's: ParseFeed takes a function that opens a file of
// the feed by name, so a directory and a URL are read the same way.
package misp

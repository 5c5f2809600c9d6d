// Package catalog keeps the indicators of every configured feed: it imports
// a feed from a file or URL (or a TAXII server), detecting the format when
// it is not given, replaces that feed's indicators, saves them in the store
// (store.Catalogs, kind "intel", one document per feed) shared by every
// node, and tells a subscriber (the intel detector) the new full set. Run
// picks up the changes other nodes made (Sync, every 5 s) and re-imports
// feeds whose refresh interval has passed, one node per refresh (a claim in
// the store). Feed files of an older version (<dir>/intel/<feed>.json) are
// imported into the store once.
//
// It does not match events; that is detect/intel's job.
package catalog

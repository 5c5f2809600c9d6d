package store

import (
	"context"
	"time"
)

// Catalogs holds the reference catalogs every node must see alike: intel
// feeds with their indicators (feeds/catalog), vulnerability sources
// (vuln/scan). A catalog is a kind ("intel", "vuln") of named documents,
// each written whole; the catalog's version grows with every put and
// delete, so a node polls CatalogVersion and reloads when it moved.
//
// Claims record that something happened once across all nodes (a
// finding alerted): the first Claim of a key wins.
type Catalogs interface {
	// PutCatalogEntry creates or replaces the document of (kind, name)
	// and returns the catalog's new version. EINVALID for an empty kind
	// or name.
	PutCatalogEntry(ctx context.Context, kind, name string, doc []byte) (int64, error)
	// DeleteCatalogEntry removes a document and returns the catalog's
	// new version. ENOTFOUND when there is none.
	DeleteCatalogEntry(ctx context.Context, kind, name string) (int64, error)
	// ListCatalogEntries returns every document of a kind, by name, and
	// the version they were read at.
	ListCatalogEntries(ctx context.Context, kind string) ([]CatalogEntry, int64, error)
	// CatalogVersion returns the version of a kind's catalog: 0 while it
	// never changed, and a larger number after every change.
	CatalogVersion(ctx context.Context, kind string) (int64, error)
	// Claim records key under kind at time at unless it is recorded,
	// and reports whether this call recorded it: of nodes claiming the
	// same key, exactly one gets true.
	Claim(ctx context.Context, kind, key string, at time.Time) (bool, error)
	// Claims returns every key claimed under kind, with when, so that a
	// starting node learns them in one read.
	Claims(ctx context.Context, kind string) (map[string]time.Time, error)
}

// CatalogEntry is one document of a catalog.
type CatalogEntry struct {
	Name    string
	Doc     []byte
	Version int64 // the catalog's version when it was last written
}

package store

import (
	"context"
	"time"
	"unicode/utf8"

	"github.com/vigil-iot/vigil"
)

// SavedQueries keeps the hunt queries people saved by name (the console's
// Hunt page, `vigil ctl hunt --save`): few, read whole. A saved query
// belongs to its Author, who names it: two authors may each have a query
// of the same name. Who may see or change which query is the caller's
// business (web.SavedQueryRoutes): the store keeps Shared and answers
// every query.
type SavedQueries interface {
	// PutSavedQuery creates or replaces the saved query of q.Author and
	// q.Name. EINVALID when q fails CheckSavedQuery.
	PutSavedQuery(ctx context.Context, q SavedQuery) error
	// ListSavedQueries returns every saved query of every author,
	// ordered by name then author (bytes).
	ListSavedQueries(ctx context.Context) ([]SavedQuery, error)
	// DeleteSavedQuery removes the saved query of that author and name.
	// ENOTFOUND when there is none.
	DeleteSavedQuery(ctx context.Context, author, name string) error
}

// SavedQuery is a hunt query kept under a name by its author.
type SavedQuery struct {
	Name   string `json:"name"`
	Query  string `json:"query"`
	Author string `json:"author"` // the actor who saved it and owns it, "user:alice"
	// Shared shows the query to every console user and API token; an
	// unshared one is shown to its author (and to admins) only.
	Shared  bool      `json:"shared"`
	Created time.Time `json:"created"`
}

// Bounds of a saved query.
const (
	MaxSavedQueryName = 100
	MaxSavedQuery     = 8192
)

// CheckSavedQuery says what is wrong with a saved query, EINVALID: a name
// of 1 to MaxSavedQueryName characters of valid UTF-8 without control
// characters, a query of 1 to MaxSavedQuery bytes of valid UTF-8, an
// author and a creation time.
func CheckSavedQuery(q SavedQuery) error {
	switch {
	case q.Name == "" || utf8.RuneCountInString(q.Name) > MaxSavedQueryName || !utf8.ValidString(q.Name):
		return vigil.Errorf(vigil.EINVALID, "saved query name %q: want 1 to %d characters", q.Name, MaxSavedQueryName)
	case q.Query == "" || len(q.Query) > MaxSavedQuery || !utf8.ValidString(q.Query):
		return vigil.Errorf(vigil.EINVALID, "saved query %q: want a query of 1 to %d bytes of UTF-8", q.Name, MaxSavedQuery)
	case q.Author == "":
		return vigil.Errorf(vigil.EINVALID, "saved query %q: no author", q.Name)
	case q.Created.IsZero():
		return vigil.Errorf(vigil.EINVALID, "saved query %q: no creation time", q.Name)
	}
	for _, r := range q.Name {
		if r < 0x20 || r == 0x7f {
			return vigil.Errorf(vigil.EINVALID, "saved query name %q: control character", q.Name)
		}
	}
	return nil
}

package store

import (
	"context"
	"regexp"
	"time"

	"github.com/vigil-iot/vigil"
)

// Users keeps the console's user accounts (console/): a name, a role of
// the API's (auth.Role) and a password hash. The store never sees a
// password; it keeps the hash it is given.
type Users interface {
	// PutUser creates or replaces a user. EINVALID for a bad name (see
	// CheckUserName), an empty role or an empty hash.
	PutUser(ctx context.Context, u User) error
	// GetUser returns one user by name. ENOTFOUND when there is none.
	GetUser(ctx context.Context, name string) (User, error)
	// ListUsers returns every user ordered by name.
	ListUsers(ctx context.Context) ([]User, error)
	// DeleteUser removes a user and every session of it. ENOTFOUND when
	// there is none.
	DeleteUser(ctx context.Context, name string) error
}

// User is one console account.
type User struct {
	Name string
	Role string // an auth.Role
	// PasswordHash is the encoded hash of the password (auth.HashPassword).
	PasswordHash string
	Created      time.Time
	Updated      time.Time
}

// Sessions keeps the console's login sessions. A session is found by the
// hash of its cookie's secret (ID), never by the secret itself, so the
// store's content does not let anyone in.
type Sessions interface {
	// PutSession creates or replaces a session. EINVALID without an ID,
	// a subject or a creation time.
	PutSession(ctx context.Context, s Session) error
	// GetSession returns a session by ID. ENOTFOUND when there is none.
	GetSession(ctx context.Context, id string) (Session, error)
	// TouchSession sets a session's LastSeen. ENOTFOUND when there is none.
	TouchSession(ctx context.Context, id string, seen time.Time) error
	// DeleteSession removes a session (logout); no error when there is none.
	DeleteSession(ctx context.Context, id string) error
	// DeleteSessionsBefore removes the sessions created before created or
	// last seen before seen (expired ones) and returns how many.
	DeleteSessionsBefore(ctx context.Context, created, seen time.Time) (int64, error)
}

// Session is one logged-in browser.
type Session struct {
	// ID is the hex SHA-256 of the cookie's secret.
	ID string
	// Subject is who logged in: "user:<name>" or "token:<token id>".
	Subject string
	// Name is what audit records and approvals call the subject: the user
	// name, or the token's name.
	Name string
	Role string // an auth.Role, as of login
	// CSRF is the token every form of the session carries.
	CSRF     string
	Created  time.Time
	LastSeen time.Time
}

var userName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// CheckUserName checks a user name: 1 to 64 letters, digits and . _ @ -,
// starting with a letter or digit.
func CheckUserName(name string) error {
	if !userName.MatchString(name) {
		return vigil.Errorf(vigil.EINVALID, "user name %q: want 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit", name)
	}
	return nil
}

// CheckUser checks the argument of PutUser.
func CheckUser(u User) error {
	if err := CheckUserName(u.Name); err != nil {
		return err
	}
	if u.Role == "" || u.PasswordHash == "" {
		return vigil.Errorf(vigil.EINVALID, "user %q needs a role and a password hash", u.Name)
	}
	return nil
}

// CheckSession checks the argument of PutSession.
func CheckSession(s Session) error {
	if s.ID == "" || s.Subject == "" || s.Created.IsZero() {
		return vigil.Errorf(vigil.EINVALID, "a session needs an id, a subject and a creation time")
	}
	return nil
}

package auth

import (
	"context"
	"slices"
	"strings"

	"github.com/vigil-iot/vigil"
)

// Role is what a token is for.
type Role string

// Roles.
const (
	// RoleAdmin may do everything, including managing tokens.
	RoleAdmin Role = "admin"
	// RoleAnalyst reads everything and acts on it: approves actions,
	// updates incidents.
	RoleAnalyst Role = "analyst"
	// RoleViewer only reads.
	RoleViewer Role = "viewer"
	// RoleAgent only sends data in (agent reports, bulk events).
	RoleAgent Role = "agent"
)

// Permission is one kind of operation a route performs.
type Permission string

// Permissions.
const (
	// PermRead reads devices, alerts, incidents, events.
	PermRead Permission = "read"
	// PermIngest sends reports and events into the pipeline.
	PermIngest Permission = "ingest"
	// PermWrite changes state: approves or denies actions, updates
	// incidents, runs playbooks.
	PermWrite Permission = "write"
	// PermAdmin manages tokens and configuration.
	PermAdmin Permission = "admin"
)

// grants is the role table: the one place that says which role may do what.
var grants = map[Role][]Permission{
	RoleAdmin:   {PermRead, PermIngest, PermWrite, PermAdmin},
	RoleAnalyst: {PermRead, PermWrite},
	RoleViewer:  {PermRead},
	RoleAgent:   {PermIngest},
}

// Roles returns every role, most powerful first.
func Roles() []Role { return []Role{RoleAdmin, RoleAnalyst, RoleViewer, RoleAgent} }

// Permissions returns every permission.
func Permissions() []Permission { return []Permission{PermRead, PermIngest, PermWrite, PermAdmin} }

// Grants returns the permissions a role holds (none for an unknown role).
func Grants(r Role) []Permission { return slices.Clone(grants[r]) }

// Can reports whether the role holds the permission.
func (r Role) Can(p Permission) bool { return slices.Contains(grants[r], p) }

// Valid reports whether r is a known role.
func (r Role) Valid() bool { _, ok := grants[r]; return ok }

// ParseRole reads a role name.
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	if !r.Valid() {
		return "", vigil.Errorf(vigil.EINVALID, "unknown role %q: want admin, analyst, viewer or agent", s)
	}
	return r, nil
}

type ctxKey struct{}

// NewContext returns a context carrying the caller's token, for handlers
// that need to know who calls (audit records, per-device checks).
func NewContext(ctx context.Context, t Token) context.Context {
	return context.WithValue(ctx, ctxKey{}, t)
}

// FromContext returns the token NewContext stored.
func FromContext(ctx context.Context) (Token, bool) {
	t, ok := ctx.Value(ctxKey{}).(Token)
	return t, ok
}

package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-iot/vigil/store"
)

// PutUser creates or replaces a console user.
func (s *Store) PutUser(ctx context.Context, u store.User) error {
	if err := store.CheckUser(u); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO users(name, role, hash, created, updated) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (name) DO UPDATE SET role = excluded.role, hash = excluded.hash, created = excluded.created, updated = excluded.updated`,
		u.Name, u.Role, u.PasswordHash, store.Nanos(u.Created), store.Nanos(u.Updated))
	if err != nil {
		return fmt.Errorf("cannot put user %q: %w", u.Name, err)
	}
	return nil
}

// GetUser returns one user; ENOTFOUND when there is none.
func (s *Store) GetUser(ctx context.Context, name string) (store.User, error) {
	u := store.User{Name: name}
	var c, up int64
	err := s.pool.QueryRow(ctx, "SELECT role, hash, created, updated FROM users WHERE name = $1", name).Scan(&u.Role, &u.PasswordHash, &c, &up)
	if isNoRows(err) {
		return store.User{}, store.NotFound("user", name)
	} else if err != nil {
		return store.User{}, fmt.Errorf("cannot get user %q: %w", name, err)
	}
	u.Created, u.Updated = time.Unix(0, c).UTC(), time.Unix(0, up).UTC()
	return u, nil
}

// ListUsers returns every user ordered by name.
func (s *Store) ListUsers(ctx context.Context) ([]store.User, error) {
	rows, err := s.pool.Query(ctx, "SELECT name, role, hash, created, updated FROM users ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("cannot list users: %w", err)
	}
	defer rows.Close()
	var out []store.User
	for rows.Next() {
		var u store.User
		var c, up int64
		if err := rows.Scan(&u.Name, &u.Role, &u.PasswordHash, &c, &up); err != nil {
			return nil, fmt.Errorf("cannot list users: %w", err)
		}
		u.Created, u.Updated = time.Unix(0, c).UTC(), time.Unix(0, up).UTC()
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot list users: %w", err)
	}
	return out, nil
}

// DeleteUser removes a user and its sessions; ENOTFOUND when there is none.
func (s *Store) DeleteUser(ctx context.Context, name string) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("cannot delete user %q: %w", name, err)
	}
	defer tx.Rollback(ctx)
	tag, err := tx.Exec(ctx, "DELETE FROM users WHERE name = $1", name)
	if err != nil {
		return fmt.Errorf("cannot delete user %q: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return store.NotFound("user", name)
	}
	if _, err := tx.Exec(ctx, "DELETE FROM sessions WHERE subject = $1", "user:"+name); err != nil {
		return fmt.Errorf("cannot delete sessions of user %q: %w", name, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("cannot delete user %q: %w", name, err)
	}
	return nil
}

// PutSession creates or replaces a session.
func (s *Store) PutSession(ctx context.Context, se store.Session) error {
	if err := store.CheckSession(se); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO sessions(id, subject, name, role, csrf, created, last_seen) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (id) DO UPDATE SET subject = excluded.subject, name = excluded.name, role = excluded.role, csrf = excluded.csrf,
		created = excluded.created, last_seen = excluded.last_seen`,
		se.ID, se.Subject, se.Name, se.Role, se.CSRF, store.Nanos(se.Created), store.Nanos(se.LastSeen))
	if err != nil {
		return fmt.Errorf("cannot put session: %w", err)
	}
	return nil
}

// GetSession returns a session; ENOTFOUND when there is none.
func (s *Store) GetSession(ctx context.Context, id string) (store.Session, error) {
	se := store.Session{ID: id}
	var c, ls int64
	err := s.pool.QueryRow(ctx, "SELECT subject, name, role, csrf, created, last_seen FROM sessions WHERE id = $1", id).
		Scan(&se.Subject, &se.Name, &se.Role, &se.CSRF, &c, &ls)
	if isNoRows(err) {
		return store.Session{}, store.NotFound("session", "(hidden)")
	} else if err != nil {
		return store.Session{}, fmt.Errorf("cannot get session: %w", err)
	}
	se.Created, se.LastSeen = time.Unix(0, c).UTC(), time.Unix(0, ls).UTC()
	return se, nil
}

// TouchSession sets a session's last-seen time; ENOTFOUND when there is none.
func (s *Store) TouchSession(ctx context.Context, id string, seen time.Time) error {
	tag, err := s.pool.Exec(ctx, "UPDATE sessions SET last_seen = $1 WHERE id = $2", store.Nanos(seen), id)
	if err != nil {
		return fmt.Errorf("cannot touch session: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return store.NotFound("session", "(hidden)")
	}
	return nil
}

// DeleteSession removes a session.
func (s *Store) DeleteSession(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, "DELETE FROM sessions WHERE id = $1", id); err != nil {
		return fmt.Errorf("cannot delete session: %w", err)
	}
	return nil
}

// DeleteSessionsBefore removes expired sessions.
func (s *Store) DeleteSessionsBefore(ctx context.Context, created, seen time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, "DELETE FROM sessions WHERE created < $1 OR last_seen < $2", store.Nanos(created), store.Nanos(seen))
	if err != nil {
		return 0, fmt.Errorf("cannot delete expired sessions: %w", err)
	}
	return tag.RowsAffected(), nil
}

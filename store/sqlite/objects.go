package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/store"
)

// This file holds the objects other than events: devices and their health,
// alerts, incidents and actions. Each is stored whole as JSON in body with
// the columns its filters need.

func encode(what, id string, v any) (string, error) {
	if id == "" {
		return "", vigil.Errorf(vigil.EINVALID, "%s has no id", what)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", vigil.Errorf(vigil.EINVALID, "cannot encode %s %q: %v", what, id, err)
	}
	return string(b), nil
}

func decode[T any](what, body string) (T, error) {
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		return v, fmt.Errorf("cannot decode stored %s: %w", what, err)
	}
	return v, nil
}

// get reads the body of one row by id.
func (s *Store) get(ctx context.Context, what, table, id string) (string, error) {
	var body string
	err := s.r.QueryRowContext(ctx, "SELECT body FROM "+table+" WHERE id = ?", id).Scan(&body)
	if isNoRows(err) {
		return "", store.NotFound(what, id)
	} else if err != nil {
		return "", fmt.Errorf("cannot get %s %q: %w", what, id, err)
	}
	return body, nil
}

// listQuery is one page of a list ordered by (key DESC, id DESC), or by id
// ascending when key is "".
type listQuery struct {
	what, table, key string
	where            []string
	args             []any
}

func (q *listQuery) and(cond string, args ...any) {
	q.where = append(q.where, cond)
	q.args = append(q.args, args...)
}

// run returns the bodies of one page and the next cursor.
func (s *Store) list(ctx context.Context, q listQuery, p store.Page) ([]string, string, error) {
	n, err := p.Size()
	if err != nil {
		return nil, "", err
	}
	if p.Cursor != "" {
		k, id, err := store.DecodeCursor(p.Cursor)
		if err != nil {
			return nil, "", err
		}
		if q.key == "" {
			q.and("id > ?", id)
		} else {
			q.and("("+q.key+", id) < (?, ?)", k, id)
		}
	}
	sel := "id"
	if q.key != "" {
		sel = q.key + ", id"
	}
	sqlq := "SELECT " + sel + ", body FROM " + q.table
	if len(q.where) > 0 {
		sqlq += " WHERE " + strings.Join(q.where, " AND ")
	}
	if q.key == "" {
		sqlq += " ORDER BY id"
	} else {
		sqlq += " ORDER BY " + q.key + " DESC, id DESC"
	}
	sqlq += " LIMIT ?"
	rows, err := s.r.QueryContext(ctx, sqlq, append(q.args, n+1)...)
	if err != nil {
		return nil, "", fmt.Errorf("cannot list %ss: %w", q.what, err)
	}
	defer rows.Close()
	var (
		out    []string
		lastK  int64
		lastID string
		more   bool
	)
	for rows.Next() {
		if len(out) == n {
			more = true
			break
		}
		var body string
		if q.key == "" {
			err = rows.Scan(&lastID, &body)
		} else {
			err = rows.Scan(&lastK, &lastID, &body)
		}
		if err != nil {
			return nil, "", fmt.Errorf("cannot read %s: %w", q.what, err)
		}
		out = append(out, body)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("cannot list %ss: %w", q.what, err)
	}
	next := ""
	if more {
		next = store.EncodeCursor(lastK, lastID)
	}
	return out, next, nil
}

func decodeAll[T any](what string, bodies []string, next string, err error) ([]T, string, error) {
	if err != nil {
		return nil, "", err
	}
	out := make([]T, 0, len(bodies))
	for _, b := range bodies {
		v, err := decode[T](what, b)
		if err != nil {
			return nil, "", err
		}
		out = append(out, v)
	}
	return out, next, nil
}

// PutDevice creates or replaces a device.
func (s *Store) PutDevice(ctx context.Context, d vigil.Device) error {
	body, err := encode("device", d.ID, d)
	if err != nil {
		return err
	}
	_, err = s.w.ExecContext(ctx, "INSERT OR REPLACE INTO devices(id, class, state, body) VALUES (?, ?, ?, ?)",
		d.ID, d.Class, string(d.State), body)
	if err != nil {
		return fmt.Errorf("cannot put device %q: %w", d.ID, err)
	}
	return nil
}

// GetDevice returns one device; ENOTFOUND when it does not exist.
func (s *Store) GetDevice(ctx context.Context, id string) (vigil.Device, error) {
	body, err := s.get(ctx, "device", "devices", id)
	if err != nil {
		return vigil.Device{}, err
	}
	return decode[vigil.Device]("device", body)
}

// ListDevices returns devices matching f ordered by id, and the next cursor.
func (s *Store) ListDevices(ctx context.Context, f store.DeviceFilter) ([]vigil.Device, string, error) {
	q := listQuery{what: "device", table: "devices"}
	if f.Class != "" {
		q.and("class = ?", f.Class)
	}
	if f.State != "" {
		q.and("state = ?", string(f.State))
	}
	if f.Tag != "" {
		q.and("EXISTS (SELECT 1 FROM json_each(body, '$.tags') WHERE value = ?)", f.Tag)
	}
	bodies, next, err := s.list(ctx, q, f.Page)
	return decodeAll[vigil.Device]("device", bodies, next, err)
}

// AddHealth appends health samples to their devices' history in one
// transaction. A sample without a device id or a time makes the whole
// call fail with EINVALID before anything is stored.
func (s *Store) AddHealth(ctx context.Context, samples []vigil.Health) error {
	if len(samples) == 0 {
		return nil
	}
	bodies := make([]string, len(samples))
	for i := range samples {
		h := &samples[i]
		if h.DeviceID == "" {
			return vigil.Errorf(vigil.EINVALID, "health sample %d has no device id", i)
		}
		if h.Time.IsZero() {
			return vigil.Errorf(vigil.EINVALID, "health sample %d of device %q has no time", i, h.DeviceID)
		}
		b, err := json.Marshal(h)
		if err != nil {
			return vigil.Errorf(vigil.EINVALID, "cannot encode health sample %d of device %q: %v", i, h.DeviceID, err)
		}
		bodies[i] = string(b)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("cannot begin health insert: %w", err)
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, "INSERT INTO health(device_id, time, body) VALUES (?, ?, ?)")
	if err != nil {
		return fmt.Errorf("cannot prepare health insert: %w", err)
	}
	defer st.Close()
	for i := range samples {
		if _, err := st.ExecContext(ctx, samples[i].DeviceID, store.Nanos(samples[i].Time), bodies[i]); err != nil {
			return fmt.Errorf("cannot insert health sample of device %q: %w", samples[i].DeviceID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("cannot commit health samples: %w", err)
	}
	return nil
}

// HealthHistory returns a device's samples in [since, until), oldest first.
// A zero until means no upper bound.
func (s *Store) HealthHistory(ctx context.Context, deviceID string, since, until time.Time) ([]vigil.Health, error) {
	hi := int64(math.MaxInt64)
	if !until.IsZero() {
		hi = store.Nanos(until)
	}
	rows, err := s.r.QueryContext(ctx,
		"SELECT body FROM health WHERE device_id = ? AND time >= ? AND time < ? ORDER BY time, rowid",
		deviceID, store.Nanos(since), hi)
	if err != nil {
		return nil, fmt.Errorf("cannot read health of device %q: %w", deviceID, err)
	}
	defer rows.Close()
	var out []vigil.Health
	for rows.Next() {
		var body string
		if err := rows.Scan(&body); err != nil {
			return nil, fmt.Errorf("cannot read health of device %q: %w", deviceID, err)
		}
		h, err := decode[vigil.Health]("health sample", body)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read health of device %q: %w", deviceID, err)
	}
	return out, nil
}

// PutAlert creates or replaces an alert.
func (s *Store) PutAlert(ctx context.Context, a vigil.Alert) error {
	body, err := encode("alert", a.ID, a)
	if err != nil {
		return err
	}
	_, err = s.w.ExecContext(ctx, `INSERT OR REPLACE INTO alerts(id, dedup_key, device_id, rule_id, incident_id, severity, created, body, prio)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.DedupKey, a.DeviceID, a.RuleID, a.IncidentID, int64(a.Severity), store.Nanos(a.Created), body,
		store.PriorityRank(a.Priority, a.Created))
	if err != nil {
		return fmt.Errorf("cannot put alert %q: %w", a.ID, err)
	}
	return nil
}

// GetAlert returns one alert; ENOTFOUND when it does not exist.
func (s *Store) GetAlert(ctx context.Context, id string) (vigil.Alert, error) {
	body, err := s.get(ctx, "alert", "alerts", id)
	if err != nil {
		return vigil.Alert{}, err
	}
	return decodeAlert(body)
}

func decodeAlert(body string) (vigil.Alert, error) {
	a, err := decode[vigil.Alert]("alert", body)
	store.NormalizeFields(a.Fields)
	return a, err
}

// FindAlertByDedupKey returns the newest alert with that dedup key created
// at or after since; ENOTFOUND when there is none.
func (s *Store) FindAlertByDedupKey(ctx context.Context, key string, since time.Time) (vigil.Alert, error) {
	var body string
	err := s.r.QueryRowContext(ctx,
		"SELECT body FROM alerts WHERE dedup_key = ? AND created >= ? ORDER BY created DESC, id DESC LIMIT 1",
		key, store.Nanos(since)).Scan(&body)
	if isNoRows(err) {
		return vigil.Alert{}, vigil.Errorf(vigil.ENOTFOUND, "no alert with dedup key %q since %s", key, since.Format(time.RFC3339))
	} else if err != nil {
		return vigil.Alert{}, fmt.Errorf("cannot find alert by dedup key %q: %w", key, err)
	}
	return decodeAlert(body)
}

// ListAlerts returns alerts matching f, newest first (by Created) or by
// priority, and the next cursor.
func (s *Store) ListAlerts(ctx context.Context, f store.AlertFilter) ([]vigil.Alert, string, error) {
	if err := store.CheckSort(f.Sort); err != nil {
		return nil, "", err
	}
	q := listQuery{what: "alert", table: "alerts", key: "created"}
	if f.Sort == store.SortPriority {
		q.key = "prio"
	}
	if f.DeviceID != "" {
		q.and("device_id = ?", f.DeviceID)
	}
	if f.RuleID != "" {
		q.and("rule_id = ?", f.RuleID)
	}
	if f.IncidentID != "" {
		q.and("incident_id = ?", f.IncidentID)
	}
	if f.MinSeverity != 0 {
		q.and("severity >= ?", int64(f.MinSeverity))
	}
	if !f.Since.IsZero() {
		q.and("created >= ?", store.Nanos(f.Since))
	}
	if !f.Until.IsZero() {
		q.and("created < ?", store.Nanos(f.Until))
	}
	bodies, next, err := s.list(ctx, q, f.Page)
	if err != nil {
		return nil, "", err
	}
	out := make([]vigil.Alert, 0, len(bodies))
	for _, b := range bodies {
		a, err := decodeAlert(b)
		if err != nil {
			return nil, "", err
		}
		out = append(out, a)
	}
	return out, next, nil
}

// PutIncident creates or replaces an incident.
func (s *Store) PutIncident(ctx context.Context, i vigil.Incident) error {
	body, err := encode("incident", i.ID, i)
	if err != nil {
		return err
	}
	_, err = s.w.ExecContext(ctx, "INSERT OR REPLACE INTO incidents(id, status, detected, updated, body, prio) VALUES (?, ?, ?, ?, ?, ?)",
		i.ID, string(i.Status), store.Nanos(i.Detected), store.Nanos(i.Updated), body, store.PriorityRank(i.Priority, i.Detected))
	if err != nil {
		return fmt.Errorf("cannot put incident %q: %w", i.ID, err)
	}
	return nil
}

// GetIncident returns one incident; ENOTFOUND when it does not exist.
func (s *Store) GetIncident(ctx context.Context, id string) (vigil.Incident, error) {
	body, err := s.get(ctx, "incident", "incidents", id)
	if err != nil {
		return vigil.Incident{}, err
	}
	return decode[vigil.Incident]("incident", body)
}

// ListIncidents returns incidents matching f, newest first (by Detected)
// or by priority, and the next cursor.
func (s *Store) ListIncidents(ctx context.Context, f store.IncidentFilter) ([]vigil.Incident, string, error) {
	if err := store.CheckSort(f.Sort); err != nil {
		return nil, "", err
	}
	q := listQuery{what: "incident", table: "incidents", key: "detected"}
	if f.Sort == store.SortPriority {
		q.key = "prio"
	}
	if f.Status != "" {
		q.and("status = ?", string(f.Status))
	}
	if f.DeviceID != "" {
		q.and("EXISTS (SELECT 1 FROM json_each(body, '$.device_ids') WHERE value = ?)", f.DeviceID)
	}
	if !f.UpdatedSince.IsZero() {
		q.and("updated >= ?", store.Nanos(f.UpdatedSince))
	}
	bodies, next, err := s.list(ctx, q, f.Page)
	return decodeAll[vigil.Incident]("incident", bodies, next, err)
}

// PutAction creates or replaces an action.
func (s *Store) PutAction(ctx context.Context, a vigil.Action) error {
	body, err := encode("action", a.ID, a)
	if err != nil {
		return err
	}
	_, err = s.w.ExecContext(ctx, "INSERT OR REPLACE INTO actions(id, device_id, incident_id, state, created, body) VALUES (?, ?, ?, ?, ?, ?)",
		a.ID, a.DeviceID, a.IncidentID, string(a.State), store.Nanos(a.Created), body)
	if err != nil {
		return fmt.Errorf("cannot put action %q: %w", a.ID, err)
	}
	return nil
}

// GetAction returns one action; ENOTFOUND when it does not exist.
func (s *Store) GetAction(ctx context.Context, id string) (vigil.Action, error) {
	body, err := s.get(ctx, "action", "actions", id)
	if err != nil {
		return vigil.Action{}, err
	}
	return decode[vigil.Action]("action", body)
}

// ListActions returns actions matching f, newest first (by Created), and
// the next cursor.
func (s *Store) ListActions(ctx context.Context, f store.ActionFilter) ([]vigil.Action, string, error) {
	q := listQuery{what: "action", table: "actions", key: "created"}
	if f.DeviceID != "" {
		q.and("device_id = ?", f.DeviceID)
	}
	if f.IncidentID != "" {
		q.and("incident_id = ?", f.IncidentID)
	}
	if f.State != "" {
		q.and("state = ?", string(f.State))
	}
	bodies, next, err := s.list(ctx, q, f.Page)
	return decodeAll[vigil.Action]("action", bodies, next, err)
}

// MergeDeviceReports writes what devices reported, each merged into the
// stored device by store.MergeDeviceReport, in one transaction on the one
// writer connection (so nothing writes a device between its read and its
// write).
func (s *Store) MergeDeviceReports(ctx context.Context, reports []vigil.Device) ([]vigil.Device, error) {
	for i := range reports {
		if reports[i].ID == "" {
			return nil, vigil.Errorf(vigil.EINVALID, "device report %d has no id", i)
		}
	}
	if len(reports) == 0 {
		return nil, nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("cannot begin device merge: %w", err)
	}
	defer tx.Rollback()
	out := make([]vigil.Device, len(reports))
	for i, r := range reports {
		d := r
		var body string
		err := tx.QueryRowContext(ctx, "SELECT body FROM devices WHERE id = ?", r.ID).Scan(&body)
		switch {
		case err == nil:
			stored, err := decode[vigil.Device]("device", body)
			if err != nil {
				return nil, err
			}
			d = store.MergeDeviceReport(stored, r)
		case !isNoRows(err):
			return nil, fmt.Errorf("cannot read device %q: %w", r.ID, err)
		}
		if body, err = encode("device", d.ID, d); err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, "INSERT OR REPLACE INTO devices(id, class, state, body) VALUES (?, ?, ?, ?)",
			d.ID, d.Class, string(d.State), body); err != nil {
			return nil, fmt.Errorf("cannot put device %q: %w", d.ID, err)
		}
		out[i] = d
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("cannot commit device merge: %w", err)
	}
	return out, nil
}

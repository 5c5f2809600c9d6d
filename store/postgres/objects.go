package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
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
	b, err := encodeJSON(v)
	if err != nil {
		return "", vigil.Errorf(vigil.EINVALID, "cannot encode %s %q: %v", what, id, err)
	}
	return b, nil
}

func decode[T any](what string, body []byte) (T, error) {
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		return v, fmt.Errorf("cannot decode stored %s: %w", what, err)
	}
	return v, nil
}

// get reads the body of one row by id.
func (s *Store) get(ctx context.Context, what, table, id string) ([]byte, error) {
	var body []byte
	err := s.pool.QueryRow(ctx, "SELECT body FROM "+table+" WHERE id = $1", noNUL(id)).Scan(&body)
	if isNoRows(err) {
		return nil, store.NotFound(what, id)
	} else if err != nil {
		return nil, fmt.Errorf("cannot get %s %q: %w", what, id, err)
	}
	return body, nil
}

// listQuery is one page of a list ordered by (key DESC, id DESC), or by id
// ascending when key is "".
type listQuery struct {
	what, table, key string
	query
}

// run returns the bodies of one page and the next cursor.
func (s *Store) list(ctx context.Context, q listQuery, p store.Page) ([][]byte, string, error) {
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
			q.and("id > " + q.arg(id))
		} else {
			q.and("(" + q.key + ", id) < (" + q.arg(k) + "::bigint, " + q.arg(id) + "::text)")
		}
	}
	sel := "id"
	if q.key != "" {
		sel = q.key + ", id"
	}
	sqlq := "SELECT " + sel + ", body FROM " + q.table + q.whereClause()
	if q.key == "" {
		sqlq += " ORDER BY id"
	} else {
		sqlq += " ORDER BY " + q.key + " DESC, id DESC"
	}
	sqlq += " LIMIT " + q.arg(n+1)
	rows, err := s.pool.Query(ctx, sqlq, q.args...)
	if err != nil {
		return nil, "", fmt.Errorf("cannot list %ss: %w", q.what, err)
	}
	defer rows.Close()
	var (
		out    [][]byte
		lastK  int64
		lastID string
		more   bool
	)
	for rows.Next() {
		if len(out) == n {
			more = true
			break
		}
		var body []byte
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

func decodeAll[T any](what string, bodies [][]byte, next string, err error) ([]T, string, error) {
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
	_, err = s.pool.Exec(ctx, `INSERT INTO devices(id, class, state, body) VALUES ($1, $2, $3, $4::jsonb)
		ON CONFLICT (id) DO UPDATE SET class = excluded.class, state = excluded.state, body = excluded.body`,
		noNUL(d.ID), noNUL(d.Class), noNUL(string(d.State)), body)
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
		q.and("class = " + q.arg(f.Class))
	}
	if f.State != "" {
		q.and("state = " + q.arg(string(f.State)))
	}
	if f.Tag != "" {
		q.and("body->'tags' ? " + q.arg(f.Tag) + "::text")
	}
	bodies, next, err := s.list(ctx, q, f.Page)
	return decodeAll[vigil.Device]("device", bodies, next, err)
}

// AddHealth appends health samples to their devices' history in one
// statement. A sample without a device id or a time makes the whole call
// fail with EINVALID before anything is stored.
func (s *Store) AddHealth(ctx context.Context, samples []vigil.Health) error {
	if len(samples) == 0 {
		return nil
	}
	var (
		devs   = make([]string, len(samples))
		times  = make([]int64, len(samples))
		bodies = make([]string, len(samples))
	)
	for i := range samples {
		h := &samples[i]
		if h.DeviceID == "" {
			return vigil.Errorf(vigil.EINVALID, "health sample %d has no device id", i)
		}
		if h.Time.IsZero() {
			return vigil.Errorf(vigil.EINVALID, "health sample %d of device %q has no time", i, h.DeviceID)
		}
		b, err := encodeJSON(h)
		if err != nil {
			return vigil.Errorf(vigil.EINVALID, "cannot encode health sample %d of device %q: %v", i, h.DeviceID, err)
		}
		devs[i], times[i], bodies[i] = noNUL(h.DeviceID), store.Nanos(h.Time), b
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO health(device_id, time, body)
		SELECT d, t, b::jsonb FROM unnest($1::text[], $2::bigint[], $3::text[]) WITH ORDINALITY AS u(d, t, b, o) ORDER BY o`,
		devs, times, bodies)
	if err != nil {
		return fmt.Errorf("cannot insert %d health samples: %w", len(samples), err)
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
	rows, err := s.pool.Query(ctx,
		"SELECT body FROM health WHERE device_id = $1 AND time >= $2 AND time < $3 ORDER BY time, seq",
		noNUL(deviceID), store.Nanos(since), hi)
	if err != nil {
		return nil, fmt.Errorf("cannot read health of device %q: %w", deviceID, err)
	}
	defer rows.Close()
	var out []vigil.Health
	for rows.Next() {
		var body []byte
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
	_, err = s.pool.Exec(ctx, `INSERT INTO alerts(id, dedup_key, device_id, rule_id, incident_id, severity, created, body, prio)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9)
		ON CONFLICT (id) DO UPDATE SET dedup_key = excluded.dedup_key, device_id = excluded.device_id,
			rule_id = excluded.rule_id, incident_id = excluded.incident_id, severity = excluded.severity,
			created = excluded.created, body = excluded.body, prio = excluded.prio`,
		noNUL(a.ID), noNUL(a.DedupKey), noNUL(a.DeviceID), noNUL(a.RuleID), noNUL(a.IncidentID), int32(a.Severity), store.Nanos(a.Created), body,
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

func decodeAlert(body []byte) (vigil.Alert, error) {
	a, err := decode[vigil.Alert]("alert", body)
	store.NormalizeFields(a.Fields)
	return a, err
}

// FindAlertByDedupKey returns the newest alert with that dedup key created
// at or after since; ENOTFOUND when there is none.
func (s *Store) FindAlertByDedupKey(ctx context.Context, key string, since time.Time) (vigil.Alert, error) {
	var body []byte
	err := s.pool.QueryRow(ctx,
		"SELECT body FROM alerts WHERE dedup_key = $1 AND created >= $2 ORDER BY created DESC, id DESC LIMIT 1",
		noNUL(key), store.Nanos(since)).Scan(&body)
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
		q.and("device_id = " + q.arg(f.DeviceID))
	}
	if f.RuleID != "" {
		q.and("rule_id = " + q.arg(f.RuleID))
	}
	if f.IncidentID != "" {
		q.and("incident_id = " + q.arg(f.IncidentID))
	}
	if f.MinSeverity != 0 {
		q.and("severity >= " + q.arg(int32(f.MinSeverity)))
	}
	if !f.Since.IsZero() {
		q.and("created >= " + q.arg(store.Nanos(f.Since)))
	}
	if !f.Until.IsZero() {
		q.and("created < " + q.arg(store.Nanos(f.Until)))
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
	_, err = s.pool.Exec(ctx, `INSERT INTO incidents(id, status, detected, updated, body, prio) VALUES ($1, $2, $3, $4, $5::jsonb, $6)
		ON CONFLICT (id) DO UPDATE SET status = excluded.status, detected = excluded.detected,
			updated = excluded.updated, body = excluded.body, prio = excluded.prio`,
		noNUL(i.ID), noNUL(string(i.Status)), store.Nanos(i.Detected), store.Nanos(i.Updated), body,
		store.PriorityRank(i.Priority, i.Detected))
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
		q.and("status = " + q.arg(string(f.Status)))
	}
	if f.DeviceID != "" {
		q.and("body->'device_ids' ? " + q.arg(f.DeviceID) + "::text")
	}
	if !f.UpdatedSince.IsZero() {
		q.and("updated >= " + q.arg(store.Nanos(f.UpdatedSince)))
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
	_, err = s.pool.Exec(ctx, `INSERT INTO actions(id, device_id, incident_id, state, created, body) VALUES ($1, $2, $3, $4, $5, $6::jsonb)
		ON CONFLICT (id) DO UPDATE SET device_id = excluded.device_id, incident_id = excluded.incident_id,
			state = excluded.state, created = excluded.created, body = excluded.body`,
		noNUL(a.ID), noNUL(a.DeviceID), noNUL(a.IncidentID), noNUL(string(a.State)), store.Nanos(a.Created), body)
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
		q.and("device_id = " + q.arg(f.DeviceID))
	}
	if f.IncidentID != "" {
		q.and("incident_id = " + q.arg(f.IncidentID))
	}
	if f.State != "" {
		q.and("state = " + q.arg(string(f.State)))
	}
	bodies, next, err := s.list(ctx, q, f.Page)
	return decodeAll[vigil.Action]("action", bodies, next, err)
}

// MergeDeviceReports writes what devices reported, each merged into the
// stored device by store.MergeDeviceReport, in one transaction. Each
// device's row is locked (SELECT ... FOR UPDATE) before it is read, in id
// order so that two nodes merging the same devices cannot deadlock; a
// device that does not exist is inserted only if no other writer inserted
// it meanwhile, else it is read again and merged.
func (s *Store) MergeDeviceReports(ctx context.Context, reports []vigil.Device) ([]vigil.Device, error) {
	for i := range reports {
		if reports[i].ID == "" {
			return nil, vigil.Errorf(vigil.EINVALID, "device report %d has no id", i)
		}
	}
	if len(reports) == 0 {
		return nil, nil
	}
	order := make([]int, len(reports))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(reports[a].ID, reports[b].ID) })
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot begin device merge: %w", err)
	}
	defer tx.Rollback(ctx)
	out := make([]vigil.Device, len(reports))
	for _, i := range order {
		r := reports[i]
		id := noNUL(r.ID)
		for attempt := 0; ; attempt++ {
			var body []byte
			err := tx.QueryRow(ctx, "SELECT body FROM devices WHERE id = $1 FOR UPDATE", id).Scan(&body)
			if err == nil {
				stored, err := decode[vigil.Device]("device", body)
				if err != nil {
					return nil, err
				}
				d := store.MergeDeviceReport(stored, r)
				b, err := encode("device", d.ID, d)
				if err != nil {
					return nil, err
				}
				if _, err := tx.Exec(ctx, "UPDATE devices SET class = $2, state = $3, body = $4::jsonb WHERE id = $1",
					id, noNUL(d.Class), noNUL(string(d.State)), b); err != nil {
					return nil, fmt.Errorf("cannot update device %q: %w", d.ID, err)
				}
				out[i] = d
				break
			}
			if !isNoRows(err) {
				return nil, fmt.Errorf("cannot read device %q: %w", r.ID, err)
			}
			if attempt > 0 {
				return nil, fmt.Errorf("cannot merge device %q: inserted by another writer, then not found", r.ID)
			}
			b, err := encode("device", r.ID, r)
			if err != nil {
				return nil, err
			}
			tag, err := tx.Exec(ctx, `INSERT INTO devices(id, class, state, body) VALUES ($1, $2, $3, $4::jsonb)
				ON CONFLICT (id) DO NOTHING`, id, noNUL(r.Class), noNUL(string(r.State)), b)
			if err != nil {
				return nil, fmt.Errorf("cannot insert device %q: %w", r.ID, err)
			}
			if tag.RowsAffected() == 1 {
				out[i] = r
				break
			}
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("cannot commit device merge: %w", err)
	}
	return out, nil
}

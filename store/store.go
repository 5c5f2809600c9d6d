// Package store defines what Vigil keeps and how it is asked for: events,
// devices with their health history, alerts, incidents, actions and the
// audit trail. Implementations live in sub-packages (sqlite, postgres) and
// must all pass the conformance suite in storetest.
//
// The store owns persistence only: it makes no detection or response
// decisions. The implementations never talk to the bus; the sink stage of
// this package (RunEventSink) consumes the bus and writes to a store.
package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/vigil-iot/vigil"
)

// Store is everything Vigil persists. Implementations are safe for
// concurrent use.
//
// Errors: methods that look one object up return an error whose
// vigil.ErrorCode is vigil.ENOTFOUND when it does not exist; bad filters
// give vigil.EINVALID. Any other error is internal.
type Store interface {
	Events
	Devices
	Alerts
	Incidents
	Actions
	Audit
	Baselines
	Exceptions
	SavedQueries
	Catalogs
	Users
	Sessions
	Tokens
	EnrollTokens
	Revocations
	Artifacts
	Graph
	UpdatePlans
	Commands
	Secrets
	RetroJobs
	Close() error
}

// Events stores normalized events.
type Events interface {
	// PutEvents stores events. An event whose ID is already stored is
	// skipped silently (sources retry; delivery is at-least-once). An
	// event without an ID or a time is rejected with EINVALID and the rest
	// of the batch is stored.
	PutEvents(ctx context.Context, events []vigil.Event) error
	// ListEvents returns events matching f, newest first, and the cursor
	// of the next page ("" when there is none).
	ListEvents(ctx context.Context, f EventFilter) ([]vigil.Event, string, error)
	// GetEvent returns one event by id.
	GetEvent(ctx context.Context, id string) (vigil.Event, error)
	// DeleteEventsBefore removes events whose Time is before t (retention)
	// and returns how many were removed. Events that an alert still cites
	// as evidence (in its EventIDs) are kept while the alert is open: it
	// has no incident, or its incident is open or contained (or no longer
	// stored). Once the incident is resolved or a false positive, the next
	// retention removes them.
	DeleteEventsBefore(ctx context.Context, t time.Time) (int64, error)
	// CountEvents returns how many events are stored.
	CountEvents(ctx context.Context) (int64, error)
}

// MaxFieldScan is how many events one ListEvents call with field filters
// reads at most (EventFilter.Fields): about 0.1 s of SQLite's time on two
// busy cores, where an unbounded scan of 300k events took 1.35 s and held
// a reader all along (BenchmarkListEventsFieldFilter in store/sqlite).
const MaxFieldScan = 20000

// EventFilter selects events. Zero fields do not filter.
type EventFilter struct {
	DeviceID string
	Kind     string
	Since    time.Time // inclusive
	Until    time.Time // exclusive
	// Fields are equality conditions on dotted field names, fixed or not
	// ("event.action" = "login", "user.name" = "root"), compared as the
	// text vigil.ValueString gives; an absent field reads as "". They are
	// evaluated per row, so a call with Fields reads at most MaxFieldScan
	// events (those the other conditions select, newest first): when it
	// read that many without filling the page, it returns the matches it
	// found with a cursor that goes on from the last event read. Combine
	// them with a device or a time range.
	Fields map[string]string
	Page
}

// Page asks for one page of a list. Limit 0 means the store's default
// (100); implementations cap it at 1000. Cursor is the value a previous
// call returned.
type Page struct {
	Limit  int
	Cursor string
}

// Devices stores the inventory and each device's health history.
type Devices interface {
	// PutDevice creates or replaces a device, every field of it. It is for
	// writers that own the whole record (operators, enrollment after a read);
	// the inventory stage, which writes what devices report, uses
	// MergeDeviceReports so that it never overwrites operator-owned fields.
	PutDevice(ctx context.Context, d vigil.Device) error
	// MergeDeviceReports writes what devices reported: each report creates
	// its device, or is merged into the stored one by MergeDeviceReport
	// (operator-owned fields such as Tags are kept as stored), read and
	// written in one transaction that holds the device's row, so a tag set
	// by another node or an operator between two reports is never lost. It
	// returns the devices as stored, in the order of reports. Reports
	// without an ID make the whole call fail with EINVALID before anything
	// is written.
	MergeDeviceReports(ctx context.Context, reports []vigil.Device) ([]vigil.Device, error)
	// GetDevice returns one device. ENOTFOUND when it does not exist.
	GetDevice(ctx context.Context, id string) (vigil.Device, error)
	// ListDevices returns devices matching f ordered by id, and the next cursor.
	ListDevices(ctx context.Context, f DeviceFilter) ([]vigil.Device, string, error)
	// AddHealth appends health samples to their devices' history.
	AddHealth(ctx context.Context, samples []vigil.Health) error
	// HealthHistory returns a device's samples in [since, until), oldest
	// first; a zero until means no upper bound.
	HealthHistory(ctx context.Context, deviceID string, since, until time.Time) ([]vigil.Health, error)
}

// DeviceFilter selects devices. Zero fields do not filter.
type DeviceFilter struct {
	Class string
	State vigil.DeviceState
	Tag   string
	Page
}

// Alerts stores alerts.
type Alerts interface {
	// PutAlert creates or replaces an alert.
	PutAlert(ctx context.Context, a vigil.Alert) error
	// GetAlert returns one alert. ENOTFOUND when it does not exist.
	GetAlert(ctx context.Context, id string) (vigil.Alert, error)
	// FindAlertByDedupKey returns the newest alert with that dedup key
	// created at or after since. ENOTFOUND when there is none.
	FindAlertByDedupKey(ctx context.Context, key string, since time.Time) (vigil.Alert, error)
	// ListAlerts returns alerts matching f in f.Sort order (newest
	// first by default), and the next cursor. EINVALID for another sort.
	ListAlerts(ctx context.Context, f AlertFilter) ([]vigil.Alert, string, error)
}

// AlertFilter selects alerts. Zero fields do not filter.
type AlertFilter struct {
	DeviceID    string
	RuleID      string
	IncidentID  string
	MinSeverity vigil.Severity
	Since       time.Time
	Until       time.Time
	// Sort is SortTime (newest first, the default) or SortPriority
	// (highest vigil.Priority score first, then newest).
	Sort string
	Page
}

// Incidents stores incidents.
type Incidents interface {
	// PutIncident creates or replaces an incident.
	PutIncident(ctx context.Context, i vigil.Incident) error
	// GetIncident returns one incident. ENOTFOUND when it does not exist.
	GetIncident(ctx context.Context, id string) (vigil.Incident, error)
	// ListIncidents returns incidents matching f in f.Sort order (newest
	// first by Detected by default), and the next cursor. EINVALID for
	// another sort.
	ListIncidents(ctx context.Context, f IncidentFilter) ([]vigil.Incident, string, error)
}

// IncidentFilter selects incidents. Zero fields do not filter.
type IncidentFilter struct {
	Status   vigil.IncidentStatus
	DeviceID string
	// UpdatedSince keeps incidents updated at or after this time.
	UpdatedSince time.Time
	// Sort is SortTime (newest first by Detected, the default) or
	// SortPriority (highest vigil.Priority score first, then newest).
	Sort string
	Page
}

// Actions stores response actions.
type Actions interface {
	// PutAction creates or replaces an action.
	PutAction(ctx context.Context, a vigil.Action) error
	// GetAction returns one action. ENOTFOUND when it does not exist.
	GetAction(ctx context.Context, id string) (vigil.Action, error)
	// ListActions returns actions matching f, newest first, and the next cursor.
	ListActions(ctx context.Context, f ActionFilter) ([]vigil.Action, string, error)
}

// ActionFilter selects actions. Zero fields do not filter.
type ActionFilter struct {
	DeviceID   string
	IncidentID string
	State      vigil.ActionState
	Page
}

// Audit stores the append-only, hash-chained audit trail.
type Audit interface {
	// AppendAudit appends a record: the store assigns Seq (1, 2, ...),
	// PrevHash (the previous record's Hash, "" for the first), Hash
	// (r.ComputeHash()) and MAC (r.ComputeMAC(key) when the store was
	// opened with an audit key, "" otherwise), atomically with respect to
	// other appends, and returns the stored record. Outcome is stored as
	// given.
	AppendAudit(ctx context.Context, r vigil.AuditRecord) (vigil.AuditRecord, error)
	// ListAudit returns records with Seq > afterSeq in Seq order, at most limit (0: all).
	ListAudit(ctx context.Context, afterSeq int64, limit int) ([]vigil.AuditRecord, error)
}

// MaxBaselineState bounds one checkpoint of the learned baseline
// (PutBaseline): both stores hold a value of this size in one row.
const MaxBaselineState = 512 << 20

// Baselines keeps the checkpoints of the learned-behaviour detector
// (detect/baseline): one opaque state per bus partition, replaced whole,
// so that a restart, or another node, starts from the latest one.
type Baselines interface {
	// PutBaseline stores the state of a partition, replacing the one
	// stored. A negative partition, a zero Saved, an empty state or one
	// over MaxBaselineState is EINVALID.
	PutBaseline(ctx context.Context, b Baseline) error
	// GetBaseline returns the state of a partition. ENOTFOUND when none
	// is stored.
	GetBaseline(ctx context.Context, partition int) (Baseline, error)
}

// Baseline is the checkpoint of one partition of the learned baseline.
type Baseline struct {
	Partition int
	Saved     time.Time // when the state was taken
	State     []byte
}

// CheckBaseline checks the argument of PutBaseline.
func CheckBaseline(b Baseline) error {
	if b.Partition < 0 {
		return vigil.Errorf(vigil.EINVALID, "baseline partition %d is negative", b.Partition)
	}
	if b.Saved.IsZero() {
		return vigil.Errorf(vigil.EINVALID, "baseline of partition %d has no time", b.Partition)
	}
	if len(b.State) == 0 || len(b.State) > MaxBaselineState {
		return vigil.Errorf(vigil.EINVALID, "baseline state of partition %d: %d bytes, want 1 to %d", b.Partition, len(b.State), MaxBaselineState)
	}
	return nil
}

// Exceptions stores alert exceptions (vigil.Exception): few, read whole
// by the alert stage and changed by people through the API.
type Exceptions interface {
	// PutException creates or replaces an exception. One that fails
	// vigil.Exception.Check is EINVALID. Replacing keeps what was given,
	// counters included.
	PutException(ctx context.Context, e vigil.Exception) error
	// GetException returns one exception. ENOTFOUND when it does not exist.
	GetException(ctx context.Context, id string) (vigil.Exception, error)
	// ListExceptions returns every exception, expired ones too, by
	// Created then id.
	ListExceptions(ctx context.Context) ([]vigil.Exception, error)
	// DeleteException removes an exception. ENOTFOUND when it does not
	// exist.
	DeleteException(ctx context.Context, id string) error
	// RecordSuppressed adds n to the exception's Suppressed counter
	// atomically, and sets LastSuppressed to at and LastAlert to what
	// when at is not before the LastSuppressed stored. ENOTFOUND when it
	// does not exist (it was deleted meanwhile).
	RecordSuppressed(ctx context.Context, id string, n int64, at time.Time, what string) error
}

// Sort orders of AlertFilter and IncidentFilter.
const (
	SortTime     = "time"
	SortPriority = "priority"
)

// CheckSort checks a Sort member: "", SortTime or SortPriority.
func CheckSort(sort string) error {
	switch sort {
	case "", SortTime, SortPriority:
		return nil
	}
	return vigil.Errorf(vigil.EINVALID, "sort %q: want %s or %s", sort, SortTime, SortPriority)
}

// PriorityRank is the key of priority order that both stores keep in a
// column: the priority's score (0 without one) above the time in
// seconds, so that one descending order gives the highest score first,
// then the newest.
func PriorityRank(p *vigil.Priority, t time.Time) int64 {
	score := int64(0)
	if p != nil {
		score = int64(max(0, min(p.Score, 100)))
	}
	sec := max(0, min(t.Unix(), 1<<40-1))
	return score<<40 | sec
}

// Artifacts keeps update artifacts (packages, firmware images) with their
// bytes, for update plans and agents to fetch.
type Artifacts interface {
	// PutArtifact stores a new artifact and its bytes. The artifact must
	// have an ID, a product, a version, a signature and a creation time,
	// and its Size and SHA256 must be those of data (1 byte to
	// MaxArtifactSize): EINVALID otherwise. An ID already stored is
	// ECONFLICT (an artifact is never replaced: remove it and add anew).
	PutArtifact(ctx context.Context, a vigil.Artifact, data []byte) error
	// GetArtifact returns an artifact's metadata; ENOTFOUND when none.
	GetArtifact(ctx context.Context, id string) (vigil.Artifact, error)
	// ArtifactData returns an artifact's bytes; ENOTFOUND when none.
	ArtifactData(ctx context.Context, id string) ([]byte, error)
	// ListArtifacts returns the artifacts of a product ("": all), by
	// product, then creation time, then ID.
	ListArtifacts(ctx context.Context, product string) ([]vigil.Artifact, error)
	// DeleteArtifact removes an artifact and its bytes; ENOTFOUND when
	// none.
	DeleteArtifact(ctx context.Context, id string) error
}

// MaxArtifactSize bounds an artifact's bytes (64 MiB): firmware images of
// the devices Vigil watches fit; bigger ones belong in a repository.
const MaxArtifactSize = 64 << 20

// CheckArtifact checks the arguments of PutArtifact.
func CheckArtifact(a vigil.Artifact, data []byte) error {
	switch {
	case a.ID == "" || len(a.ID) > 128:
		return vigil.Errorf(vigil.EINVALID, "artifact id %q: want 1 to 128 characters", a.ID)
	case a.Product == "" || a.Version == "":
		return vigil.Errorf(vigil.EINVALID, "artifact %s: product and version are required", a.ID)
	case a.Signature == "":
		return vigil.Errorf(vigil.EINVALID, "artifact %s: no signature", a.ID)
	case a.Created.IsZero():
		return vigil.Errorf(vigil.EINVALID, "artifact %s: no creation time", a.ID)
	case len(data) == 0 || len(data) > MaxArtifactSize:
		return vigil.Errorf(vigil.EINVALID, "artifact %s: %d bytes, want 1 to %d", a.ID, len(data), MaxArtifactSize)
	case a.Size != int64(len(data)):
		return vigil.Errorf(vigil.EINVALID, "artifact %s: size %d but %d bytes", a.ID, a.Size, len(data))
	}
	sum := sha256.Sum256(data)
	if a.SHA256 != hex.EncodeToString(sum[:]) {
		return vigil.Errorf(vigil.EINVALID, "artifact %s: sha256 %s is not that of its bytes", a.ID, a.SHA256)
	}
	return nil
}

// Graph keeps the entity graph (see graph.go for its types): the entities
// events name (devices, addresses, accounts, topics, software, files,
// domains, ...) and the relations between them, each with first and last
// seen, a count and the events that showed it first and last. The graph
// stage (package graph) feeds it; package investigate reads it.
type Graph interface {
	// PutGraph merges a batch into the graph: an entity or a relation not
	// stored yet is created; one stored gets the batch's count added, its
	// first seen moved earlier and its last seen later (with the events
	// that showed them). Duplicates in the batch are merged first
	// (MergeGraph). The batch is applied atomically. A bad key, relation
	// name or a zero time is EINVALID (CheckGraphBatch) and nothing is
	// stored.
	PutGraph(ctx context.Context, b GraphBatch) error
	// GraphRelations returns the relations from or to any of f.Keys,
	// most recently seen first, at most f's limit. No key, too many keys
	// or a negative limit is EINVALID (CheckGraphFilter).
	GraphRelations(ctx context.Context, f GraphFilter) ([]Relation, error)
	// GetEntities returns the stored entities among keys, in key order;
	// keys not stored are left out. More than MaxGraphKeys keys is
	// EINVALID.
	GetEntities(ctx context.Context, keys []string) ([]Entity, error)
	// FindEntities returns entities whose value (the part after the
	// type) is exactly value, whatever their type, in key order, at most
	// limit (0: 100).
	FindEntities(ctx context.Context, value string, limit int) ([]Entity, error)
	// DeleteGraphBefore removes the relations and the entities last seen
	// before t (retention) and returns how many relations were removed.
	// An entity last seen before t has no relation seen later.
	DeleteGraphBefore(ctx context.Context, t time.Time) (int64, error)
}

package export

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/vigil-iot/vigil"
)

// IncidentEncoder turns an incident into one JSON document.
type IncidentEncoder func(inc vigil.Incident) ([]byte, error)

// IncidentEncoderFor returns the incident encoder of a format name.
func IncidentEncoderFor(format string) (IncidentEncoder, error) {
	switch format {
	case FormatECS, "":
		return ECSIncident, nil
	case FormatOCSF:
		return OCSFIncident, nil
	}
	return nil, fmt.Errorf("cannot encode format %q: want ecs or ocsf", format)
}

// IncidentDocID is the document id of one version of an incident (the
// incident id and its update time): each change is a document of its
// own, and a resent version is not duplicated (Elasticsearch _id, NATS
// message id).
func IncidentDocID(inc vigil.Incident) string {
	return "incident-" + inc.ID + "-" + strconv.FormatInt(inc.Updated.UnixNano(), 10)
}

// ECSIncident encodes an incident as an ECS document of event.kind
// "alert" and event.dataset "vigil.incident": its devices in host.id
// (the first) and vigil.device_ids, its entities in related.*, its
// techniques in threat.*, its alerts, status and priority under vigil.
func ECSIncident(inc vigil.Incident) ([]byte, error) {
	a := incidentAsAlert(inc)
	b, err := ECS(a)
	if err != nil {
		return nil, err
	}
	// The alert document with the incident's own dataset and members.
	var doc map[string]any
	if err := unmarshal(b, &doc); err != nil {
		return nil, err
	}
	ev := doc["event"].(map[string]any)
	ev["dataset"] = "vigil.incident"
	ev["id"] = inc.ID
	ev["type"] = []string{"info"}
	delete(doc, "rule")
	doc["@timestamp"] = rfc3339(inc.Updated)
	doc["vigil"] = incidentExtras(inc)
	return marshal(doc)
}

// OCSF class and values of the Incident Finding class (Findings category).
const (
	ocsfClassIncident  = 2005
	ocsfActivityUpdate = 2
	ocsfActivityClose  = 3
)

// ocsfIncidentStatus maps Vigil's incident status to OCSF status_id.
var ocsfIncidentStatus = map[vigil.IncidentStatus]struct {
	id   int
	name string
}{
	vigil.IncidentOpen:          {1, "New"},
	vigil.IncidentContained:     {2, "In Progress"},
	vigil.IncidentResolved:      {4, "Resolved"},
	vigil.IncidentFalsePositive: {4, "Resolved"},
}

// OCSFIncident encodes an incident as an OCSF Incident Finding (class_uid
// 2005): activity Create for its first version, Close once resolved,
// Update otherwise; finding_info_list holds the incident's alerts; the
// devices, entities and techniques as in OCSF; the rest under unmapped.
func OCSFIncident(inc vigil.Incident) ([]byte, error) {
	a := incidentAsAlert(inc)
	b, err := OCSF(a)
	if err != nil {
		return nil, err
	}
	var doc map[string]any
	if err := unmarshal(b, &doc); err != nil {
		return nil, err
	}
	act, actName := ocsfActivityUpdate, "Update"
	switch {
	case !inc.Resolved.IsZero():
		act, actName = ocsfActivityClose, "Close"
	case inc.Updated.Equal(inc.Detected):
		act, actName = ocsfActivityCreate, "Create"
	}
	st := ocsfIncidentStatus[inc.Status]
	if st.id == 0 {
		st.id, st.name = 99, "Other"
	}
	fi := doc["finding_info"].(map[string]any)
	delete(fi, "analytic")
	delete(fi, "related_events")
	delete(doc, "finding_info")
	var list []map[string]any
	for _, id := range inc.AlertIDs {
		list = append(list, map[string]any{"uid": id})
	}
	doc["finding_info_list"] = list
	doc["class_uid"], doc["class_name"] = ocsfClassIncident, "Incident Finding"
	doc["activity_id"], doc["activity_name"] = act, actName
	doc["type_uid"], doc["type_name"] = ocsfClassIncident*100+act, "Incident Finding: "+actName
	doc["status_id"], doc["status"] = st.id, st.name
	doc["time"] = ms(inc.Updated)
	doc["start_time"] = ms(inc.FirstEventTime)
	if !inc.Resolved.IsZero() {
		doc["end_time"] = ms(inc.Resolved)
	}
	doc["desc"] = inc.Title
	delete(doc, "count")
	if len(inc.DeviceIDs) > 0 {
		var devs []map[string]any
		for _, d := range inc.DeviceIDs {
			devs = append(devs, map[string]any{"uid": d, "type_id": ocsfDeviceIoT, "type": "IOT"})
		}
		doc["impacted_resources"] = devs
	}
	doc["unmapped"] = incidentExtras(inc)
	return marshal(doc)
}

// incidentAsAlert is the alert-shaped view of an incident the alert
// encoders start from.
func incidentAsAlert(inc vigil.Incident) vigil.Alert {
	dev := ""
	if len(inc.DeviceIDs) > 0 {
		dev = inc.DeviceIDs[0]
	}
	return vigil.Alert{ID: inc.ID, Detector: "incident", Title: inc.Title, Severity: inc.Severity, Techniques: inc.Techniques,
		DeviceID: dev, Entities: inc.Entities, FirstEventTime: inc.FirstEventTime, LastEventTime: inc.Updated, Created: inc.Detected, Count: len(inc.AlertIDs)}
}

func incidentExtras(inc vigil.Incident) map[string]any {
	m := omitEmpty(map[string]any{
		"incident_id": inc.ID,
		"status":      string(inc.Status),
		"device_ids":  inc.DeviceIDs,
		"entities":    inc.Entities,
		"alert_ids":   inc.AlertIDs,
		"replayed":    inc.Replayed,
	})
	for k, t := range map[string]time.Time{"detected": inc.Detected, "contained": inc.Contained, "resolved": inc.Resolved, "updated": inc.Updated, "first_received": inc.FirstReceived} {
		if !t.IsZero() {
			m[k] = rfc3339(t)
		}
	}
	if inc.Priority != nil {
		m["priority"] = inc.Priority
	}
	return m
}

// IncidentSource lists the incidents changed at or after a time, oldest
// change first, at most limit of them (the store is one, through cmd/).
type IncidentSource interface {
	IncidentsUpdatedSince(ctx context.Context, since time.Time, limit int) ([]vigil.Incident, error)
}

// IncidentOptions configure RunIncidents.
type IncidentOptions struct {
	// Encoder encodes incidents (default ECSIncident).
	Encoder IncidentEncoder
	// Every is how often the source is read (default 10s).
	Every time.Duration
	// Since is where reading starts (the export keeps its place in memory
	// only: a restart starts again from Since, resending what changed
	// after it).
	Since time.Time
}

// RunIncidents exports every version of the incidents the source lists,
// reading it every Options.Every, until ctx ends; then it closes the sink.
// Its place moves past an incident only once the SIEM took it, so a SIEM
// that is down loses nothing while the process runs. The exporter must
// not also run alerts (Send is not called concurrently): make one per
// stream.
func (e *Exporter) RunIncidents(ctx context.Context, src IncidentSource, o IncidentOptions) error {
	defer e.sink.Close()
	if o.Encoder == nil {
		o.Encoder = ECSIncident
	}
	if o.Every <= 0 {
		o.Every = 10 * time.Second
	}
	since := o.Since
	seen := map[string]bool{} // versions at the `since` instant already sent
	for {
		incs, err := src.IncidentsUpdatedSince(ctx, since, 500)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			e.log.Warn("cannot read incidents", "err", err)
		} else {
			next, nextSeen, err := e.HandleIncidents(ctx, incs, since, seen, o.Encoder)
			if err != nil && ctx.Err() == nil {
				e.log.Warn("incidents not exported; retrying", "err", err)
			}
			moved := next.After(since)
			since, seen = next, nextSeen
			if err == nil && len(incs) == 500 && moved {
				continue // more to read
			}
		}
		if err := e.opts.Sleep(ctx, o.Every); err != nil {
			return nil
		}
	}
}

// HandleIncidents sends incident versions changed at or after since
// (those of seen, sent already at that instant, are skipped) and returns
// where the next read starts.
func (e *Exporter) HandleIncidents(ctx context.Context, incs []vigil.Incident, since time.Time, seen map[string]bool, enc IncidentEncoder) (time.Time, map[string]bool, error) {
	sort.SliceStable(incs, func(i, j int) bool { return incs[i].Updated.Before(incs[j].Updated) })
	var docs []Doc
	for _, inc := range incs {
		id := IncidentDocID(inc)
		if seen[id] {
			continue
		}
		b, err := enc(inc)
		if err != nil {
			e.dropped.Inc()
			e.log.Error("incident dropped: cannot encode it", "incident", inc.ID, "err", err)
			continue
		}
		docs = append(docs, Doc{ID: id, Time: inc.Updated, Severity: inc.Severity, JSON: b})
	}
	if err := e.deliver(ctx, docs); err != nil {
		return since, seen, err // e.accepted keeps what went through
	}
	clear(e.accepted)
	for _, inc := range incs {
		switch {
		case inc.Updated.After(since):
			since, seen = inc.Updated, map[string]bool{}
			fallthrough
		case inc.Updated.Equal(since):
			seen[IncidentDocID(inc)] = true
		}
	}
	return since, seen, nil
}

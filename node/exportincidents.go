package node

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/export"
	"github.com/vigil-iot/vigil/store"
)

// exportIncidentsLookback is how far back the incident export starts when
// the server starts (its place is kept in memory only): incidents changed
// in the last hour are sent again after a restart.
const exportIncidentsLookback = time.Hour

// incidentExporter returns the loop that sends the incidents of the
// store to the sink s names (the export section's incidents: true).
func (a *Node) incidentExporter(s ExportSinkConfig) (func(context.Context) error, error) {
	sink, err := s.sink(&a.cfg, a.bus.ClientURL())
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", s.name(), err)
	}
	enc, _ := export.IncidentEncoderFor(s.Format)
	e, err := export.New(sink, export.Options{Name: s.name() + "-incidents", Logger: a.log, Registerer: a.registry})
	if err != nil {
		return nil, err
	}
	a.log.Info("exporting incidents", "sink", s.name(), "type", s.Type)
	since := time.Now().Add(-exportIncidentsLookback)
	return func(ctx context.Context) error {
		return e.RunIncidents(ctx, storeIncidents{a.store}, export.IncidentOptions{Encoder: enc, Since: since})
	}, nil
}

// storeIncidents reads the incidents changed since a time from the store.
type storeIncidents struct{ st store.Incidents }

func (s storeIncidents) IncidentsUpdatedSince(ctx context.Context, since time.Time, limit int) ([]vigil.Incident, error) {
	var all []vigil.Incident
	cursor := ""
	for {
		incs, next, err := s.st.ListIncidents(ctx, store.IncidentFilter{UpdatedSince: since, Page: store.Page{Limit: 1000, Cursor: cursor}})
		if err != nil {
			return nil, err
		}
		all = append(all, incs...)
		if next == "" || len(all) >= 100000 {
			break
		}
		cursor = next
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Updated.Before(all[j].Updated) })
	if len(all) > limit {
		all = all[:limit]
	}
	return all, nil
}

var _ export.IncidentSource = storeIncidents{}

package node

import (
	"context"
	"slices"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/alert"
	"github.com/vigil-iot/vigil/incident"
	"github.com/vigil-iot/vigil/vuln/scan"
	"github.com/vigil-iot/vigil/web"
)

// excepter is the alert stage's exceptions (alert.Options.Exceptions).
func (a *Node) excepter() *alert.Excepter {
	if a.exceptions == nil {
		a.exceptions = alert.NewExcepter(a.store, alert.ExcepterOptions{Logger: a.log})
	}
	return a.exceptions
}

// exceptionRoutes are /api/v1/exceptions and the suggestions of an
// incident; a change takes effect in the alert stage at once.
func (a *Node) exceptionRoutes() []web.Route {
	return web.ExceptionRoutes(web.ExceptionsAPI{Store: a.store, Changed: a.excepter().Invalidate, Logger: a.log})
}

// suggestExceptions proposes exceptions for a false positive (the answer
// of the resolve route); a failure is logged, the resolution stands.
func (a *Node) suggestExceptions(ctx context.Context, inc vigil.Incident) []alert.Suggestion {
	ss, err := alert.SuggestExceptions(ctx, a.store, inc, time.Now(), 0, 0)
	if err != nil {
		a.log.Error("cannot suggest exceptions", "component", "alert", "incident", inc.ID, "err", err)
	}
	return ss
}

// prioritizer gives alerts and incidents their priority: the inventory's
// devices, the KEV findings of the vulnerability DB (when open) and the
// devices of the incident's blast radius (investigate.Reach, recomputed
// at most once a minute per incident).
func (a *Node) prioritizer() *incident.Prioritizer {
	p := &incident.Prioritizer{Devices: a.store, Logger: a.log, BlastRadius: a.investigator().Reach(time.Minute).Devices}
	if a.vuln != nil {
		p.KEV = kevFindings{a.vuln}
	}
	return p
}

// kevFindings is incident.KEVSource over the vulnerability DB.
type kevFindings struct{ db *scan.DB }

func (k kevFindings) KEV(deviceID string) []string {
	var out []string
	for _, f := range k.db.Findings(scan.Filter{DeviceID: deviceID, KEVOnly: true}) {
		if !slices.Contains(out, f.Vuln) {
			out = append(out, f.Vuln)
		}
	}
	return out
}

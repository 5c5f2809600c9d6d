package main

import (
	"context"
	"fmt"
	"io"

	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/sim"
	"github.com/vigil-iot/vigil/store"
)

// printInvestigateHints prints, after the demo with --keep, the
// investigation commands to try on the attacked device's incident: its
// blast radius, its report, the entity graph around the device and the
// attacker's address, and the campaigns. conn is the connection flags.
func printInvestigateHints(ctx context.Context, out io.Writer, admin *client.Client, deviceID, conn string) {
	incs, _, err := admin.ListIncidents(ctx, store.IncidentFilter{DeviceID: deviceID, Page: store.Page{Limit: 1}})
	id := "ID"
	if err == nil && len(incs) > 0 {
		id = incs[0].ID
	}
	fmt.Fprintf(out, `  investigate the attack on %[1]s (incident %[2]s):
         vigil ctl incidents %[2]s --blast-radius %[3]s
         vigil ctl incidents %[2]s --report %[3]s > report.html
         vigil ctl graph device:%[1]s --depth 2 %[3]s
         vigil ctl graph ip:%[4]s %[3]s
         vigil ctl campaigns %[3]s
  hunt through the history (docs/hunting.md):
         vigil ctl hunt 'event.outcome=failure | stats count by device.id | sort -count' %[3]s
         vigil ctl hunt 'source.ip=%[4]s | stats count by device.id, event.action' %[3]s
         vigil ctl retrohunt start --rules builtin --since -1h --wait %[3]s
`, deviceID, id, conn, sim.Attacker)
}

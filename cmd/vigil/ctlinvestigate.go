package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-iot/vigil/investigate"
)

// withInvestigation adds --blast-radius and --report to `vigil ctl
// incidents ID`: with either, the command prints that instead of the
// incident.
func withInvestigation(o *ctlOptions, cmd *cobra.Command) *cobra.Command {
	var blast, report bool
	run := cmd.RunE
	cmd.Flags().BoolVar(&blast, "blast-radius", false, "with ID: what the incident's devices reached or share a weakness with, ranked, with reasons and evidence")
	cmd.Flags().BoolVar(&report, "report", false, "with ID: the incident report, HTML for a browser or a printer (vigil ctl incidents ID --report > r.html)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if !blast && !report {
			return run(cmd, args)
		}
		if len(args) != 1 {
			return fmt.Errorf("--blast-radius and --report need an incident ID")
		}
		if blast && report {
			return fmt.Errorf("give --blast-radius or --report, not both")
		}
		c, err := o.client()
		if err != nil {
			return err
		}
		defer c.Close()
		if report {
			b, err := c.IncidentReport(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		}
		br, err := c.BlastRadius(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		return o.print(cmd.OutOrStdout(), br, func(tw *tabwriter.Writer) { printBlastRadius(tw, br, o.limit) })
	}
	return cmd
}

func printBlastRadius(tw *tabwriter.Writer, br investigate.BlastRadius, limit int) {
	fmt.Fprintf(tw, "INCIDENT\t%s\nCOMPROMISED\t%s\nSINCE\t%s (first malicious event)\nENTITIES\t%d\n\n",
		printable(br.IncidentID), printable(strings.Join(br.Compromised, ", ")), br.Since.Format(time.RFC3339), br.Total)
	fmt.Fprintln(tw, "RANK\tENTITY\tDEVICE\tSCORE\tREASON\tEVIDENCE")
	for i, im := range br.Items {
		if limit > 0 && i == limit {
			fmt.Fprintf(tw, "… %d more: raise --limit or use -o json\n", len(br.Items)-i)
			break
		}
		for j, r := range im.Reasons {
			rank, ent, dev, score := "", "", "", ""
			if j == 0 {
				rank, ent, dev, score = fmt.Sprint(i+1), printable(im.Entity), printable(im.Device), fmt.Sprintf("%g", im.Score)
				if dev == "" {
					dev = "-"
				}
			}
			// Entity values and details come from devices: never raw to the terminal.
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s: %s\t%s\n", rank, ent, dev, score, r.Code, printable(r.Detail), printable(evidence(r)))
		}
	}
}

// evidence names what shows a reason: the events of its first relation,
// or its vulnerabilities.
func evidence(r investigate.Reason) string {
	if len(r.Vulns) > 0 {
		return strings.Join(r.Vulns, ",")
	}
	if len(r.Relations) == 0 {
		return "inventory"
	}
	rel := r.Relations[0]
	s := "events " + rel.FirstEvent
	if rel.LastEvent != rel.FirstEvent {
		s += " … " + rel.LastEvent
	}
	return s
}

package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-iot/vigil/investigate"
)

// ctlCampaignsCmd is `vigil ctl campaigns [ID]`.
func ctlCampaignsCmd(o *ctlOptions) *cobra.Command {
	var since string
	cmd := &cobra.Command{
		Use:   "campaigns [ID]",
		Short: "List campaigns (incidents on several devices sharing indicators), or show one with its timeline",
		Long: `Incidents on different devices are one campaign when they share an indicator: an address
the attack came from, a domain, a file hash, an account (credential) or the same sequence of
ATT&CK techniques. Campaigns are computed on request from the incidents detected since --since.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			defer c.Close()
			out := cmd.OutOrStdout()
			if len(args) == 1 {
				cp, err := c.Campaign(cmd.Context(), args[0], since)
				if err != nil {
					return err
				}
				return o.print(out, cp, func(tw *tabwriter.Writer) { printCampaign(tw, cp) })
			}
			cs, err := c.Campaigns(cmd.Context(), since)
			if err != nil {
				return err
			}
			return o.print(out, cs, func(tw *tabwriter.Writer) {
				if len(cs) == 0 {
					fmt.Fprintln(tw, "no campaign: no two incidents on different devices share an indicator in the window (--since, default 30 days)")
					return
				}
				fmt.Fprintln(tw, "ID\tSEVERITY\tINCIDENTS\tDEVICES\tSHARED\tFIRST\tLAST")
				for _, cp := range cs {
					fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", cp.ID, cp.Severity, len(cp.Incidents), printable(strings.Join(cp.Devices, ",")),
						printable(indicators(cp.Indicators, 3)), cp.First.Format(time.DateTime), cp.Last.Format(time.DateTime))
				}
			})
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "incidents detected since: a duration ago (72h) or an RFC 3339 time (default 30 days)")
	return cmd
}

func indicators(inds []investigate.Indicator, n int) string {
	var s []string
	for i, ind := range inds {
		if i == n {
			s = append(s, fmt.Sprintf("+%d", len(inds)-n))
			break
		}
		s = append(s, ind.Kind+":"+ind.Value)
	}
	return joinOr(s, "-")
}

func printCampaign(tw *tabwriter.Writer, cp investigate.Campaign) {
	fmt.Fprintf(tw, "ID\t%s\nTITLE\t%s\nSEVERITY\t%s\nINCIDENTS\t%s\nDEVICES\t%s\nATT&CK\t%s\nFIRST\t%s\nLAST\t%s\n",
		cp.ID, printable(cp.Title), cp.Severity, printable(strings.Join(cp.Incidents, ", ")), printable(strings.Join(cp.Devices, ", ")), printable(joinOr(cp.Techniques, "-")),
		cp.First.Format(time.RFC3339), cp.Last.Format(time.RFC3339))
	for _, ind := range cp.Indicators {
		fmt.Fprintf(tw, "SHARED\t%s %s (incidents %s)\n", ind.Kind, printable(ind.Value), printable(strings.Join(ind.Incidents, ", ")))
	}
	fmt.Fprintln(tw, "\nTIME\tWHAT\tINCIDENT\tDEVICE\tSEVERITY\tTITLE\tREF")
	for _, e := range cp.Timeline {
		sev := "-"
		if e.Severity != 0 {
			sev = e.Severity.String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Format("2006-01-02 15:04:05.000"), e.What, printable(e.IncidentID), printable(e.DeviceID), sev, printable(e.Title), printable(e.Ref))
	}
}

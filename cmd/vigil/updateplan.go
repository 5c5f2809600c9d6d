package main

import (
	"cmp"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-iot/vigil/remediate"
)

// newUpdatePlanCmd is `vigil update plan list|show|approve|halt`.
func newUpdatePlanCmd(o *ctlOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "plan", Short: "Update plans: findings fixed by an artifact, sent to a cohort in waves"}
	var state string
	list := &cobra.Command{
		Use: "list", Short: "List update plans", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			ps, err := c.ListUpdatePlans(cmd.Context(), state)
			if err != nil {
				return err
			}
			return o.print(cmd.OutOrStdout(), ps, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "ID\tSTATE\tCOHORT\tPRODUCT\tVERSION\tDEVICES\tWAVES\tFINDINGS\tMEAN TTR\tREASON")
				for _, p := range ps {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%d/%d closed\t%s\t%s\n", p.ID, p.State, p.Cohort, p.Product, p.Version,
						targets(p), waveSummary(p), p.Closed, p.Closed+p.Open, ttr(p.TTR), cmp.Or(p.Halted, p.Reason))
				}
			})
		},
	}
	list.Flags().StringVar(&state, "state", "", "only plans in this state (proposed, running, halted, completed)")
	show := &cobra.Command{
		Use: "show ID", Short: "Show a plan: its waves, devices and findings", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			p, err := c.GetUpdatePlan(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return o.print(cmd.OutOrStdout(), p, func(tw *tabwriter.Writer) { printPlan(tw, p) })
		},
	}
	approve := &cobra.Command{
		Use: "approve ID", Short: "Approve a proposed plan: its first wave goes out at the next tick", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			p, err := c.ApproveUpdatePlan(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return o.print(cmd.OutOrStdout(), p, func(tw *tabwriter.Writer) { printPlan(tw, p) })
		},
	}
	var reason string
	halt := &cobra.Command{
		Use: "halt ID [--reason R]", Short: "Halt a plan: no further wave is sent", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			p, err := c.HaltUpdatePlan(cmd.Context(), args[0], reason)
			if err != nil {
				return err
			}
			return o.print(cmd.OutOrStdout(), p, func(tw *tabwriter.Writer) { printPlan(tw, p) })
		},
	}
	halt.Flags().StringVar(&reason, "reason", "", "why (recorded in the audit trail)")
	cmd.AddCommand(list, show, approve, halt)
	return cmd
}

func targets(p remediate.PlanView) int {
	n := 0
	for _, w := range p.Waves {
		n += len(w.Targets)
	}
	return n
}

func waveSummary(p remediate.PlanView) string {
	var s []string
	for _, w := range p.Waves {
		s = append(s, fmt.Sprint(len(w.Targets)))
	}
	return strings.Join(s, "+")
}

func ttr(s float64) string {
	if s == 0 {
		return "-"
	}
	return (time.Duration(s) * time.Second).String()
}

func printPlan(w io.Writer, p remediate.PlanView) {
	fmt.Fprintf(w, "plan %s: %s\ncohort %s: %s → %s (artifact %s)\n", p.ID, p.State, p.Cohort, p.Product, p.Version, p.ArtifactID)
	fmt.Fprintf(w, "%s\n", p.Reason)
	if p.ApprovedBy != "" {
		fmt.Fprintf(w, "approved by %s at %s\n", p.ApprovedBy, p.Approved.Format(time.RFC3339))
	}
	if p.Halted != "" {
		fmt.Fprintf(w, "halted: %s\n", p.Halted)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WAVE\tDEVICE\tSTATE\tFROM\tDETAIL")
	for i, wv := range p.Waves {
		for _, t := range wv.Targets {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", i+1, t.DeviceID, t.State, t.Previous, t.Detail)
		}
	}
	tw.Flush()
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FINDING\tVULN\tKEV\tDEVICE\tCOMPONENT\tFIXED\tCLOSED\tTIME TO REMEDIATE")
	for _, f := range p.Findings {
		closed, d := "open", "-"
		if !f.Closed.IsZero() {
			closed, d = f.Closed.Format(time.RFC3339), f.TimeToRemediate().Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s %s\t%s\t%s\t%s\n", f.FindingID, f.Vuln, f.KEV, f.DeviceID, f.Component, f.From, f.Fixed, closed, d)
	}
	tw.Flush()
}

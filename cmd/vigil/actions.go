package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/respond"
	"github.com/vigil-iot/vigil/store"
)

// ctlActionsCmd is `vigil ctl actions [--state S] [--device D] [--incident I]`,
// with approve and deny subcommands.
func ctlActionsCmd(o *ctlOptions) *cobra.Command {
	var f store.ActionFilter
	var state string
	cmd := &cobra.Command{
		Use:   "actions [ID]",
		Short: "List response actions, or show one in full; approve or deny those pending approval",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			defer c.Close()
			if len(args) == 1 {
				a, err := c.GetAction(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return o.printOne(cmd.OutOrStdout(), a, nil)
			}
			f.State = vigil.ActionState(state)
			f.Limit = o.limit
			acts, next, err := c.ListActions(cmd.Context(), f)
			if err != nil {
				return err
			}
			defer o.printMore(cmd, next)
			if acts == nil {
				acts = []respond.ActionView{}
			}
			return o.print(cmd.OutOrStdout(), acts, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "ID\tSTATE\tTYPE\tDEVICE\tPLAYBOOK\tAPPROVERS\tHELD\tUPDATED\tRESULT")
				for _, a := range acts {
					approvers := "-"
					if n := a.Engine.ApprovalsRequired; n > 0 || len(a.Approvers) > 0 {
						approvers = fmt.Sprintf("%d/%d", len(a.Approvers), n)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.State, a.Type, dash(a.DeviceID), dash(a.Playbook),
						approvers, dash(a.Engine.Held), ago(a.Updated), dash(printable(oneLine(a.Result, 60))))
				}
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&state, "state", "", "only actions in this state (pending_approval, sent, succeeded, ...)")
	fl.StringVar(&f.DeviceID, "device", "", "only actions on this device")
	fl.StringVar(&f.IncidentID, "incident", "", "only actions of this incident")
	addCursorFlag(cmd, &f.Cursor)
	cmd.AddCommand(ctlActionDecideCmd(o, true), ctlActionDecideCmd(o, false))
	return cmd
}

// ctlActionDecideCmd is `vigil ctl actions approve ID` or `... deny ID`.
func ctlActionDecideCmd(o *ctlOptions, approve bool) *cobra.Command {
	var reason string
	use, short := "approve ID", "Approve a pending action as this token's name"
	if !approve {
		use, short = "deny ID", "Deny a pending action"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			defer c.Close()
			var a respond.ActionView
			if approve {
				a, err = c.ApproveAction(cmd.Context(), args[0])
			} else {
				a, err = c.DenyAction(cmd.Context(), args[0], reason)
			}
			if err != nil {
				return err
			}
			return o.print(cmd.OutOrStdout(), a, func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "ID\t%s\nSTATE\t%s\nTYPE\t%s\nDEVICE\t%s\nAPPROVERS\t%d/%d %v\nUPDATED\t%s\n",
					a.ID, a.State, a.Type, dash(a.DeviceID), len(a.Approvers), a.Engine.ApprovalsRequired, a.Approvers, a.Updated.Format(time.DateTime))
			})
		},
	}
	if !approve {
		cmd.Flags().StringVar(&reason, "reason", "", "why it is denied (audited)")
	}
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string, max int) string {
	for i, r := range s {
		if r == '\n' {
			s = s[:i]
			break
		}
	}
	if len(s) > max {
		s = s[:max] + "..."
	}
	return s
}

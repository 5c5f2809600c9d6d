package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-iot/vigil/alert"
	"github.com/vigil-iot/vigil/web"
)

// ctlExceptionsCmd is `vigil ctl exceptions`: list, add and remove alert
// exceptions, and see those proposed for a false positive.
func ctlExceptionsCmd(o *ctlOptions) *cobra.Command {
	var rule string
	cmd := &cobra.Command{
		Use:   "exceptions",
		Short: "List alert exceptions: rules kept from alerting on a device, cohort or field value until they expire",
		Long: `An exception keeps one rule from raising alerts on a device (--device), a cohort (--class,
or --vendor and --model) or alerts with a field value (--field source.ip=10.0.0.5), until it
expires. Each counts the alerts it suppressed (SUPPRESSED, LAST). Creating and removing one is
audited. Closing an incident as a false positive proposes exceptions for its alerts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			defer c.Close()
			list, err := c.ListExceptions(cmd.Context(), rule)
			if err != nil {
				return err
			}
			return o.print(cmd.OutOrStdout(), list, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "ID\tRULE\tSCOPE\tEXPIRES\tSUPPRESSED\tLAST\tAUTHOR\tREASON")
				for _, e := range list {
					exp := e.Expires.UTC().Format(time.RFC3339)
					if !e.Active {
						exp += " (expired)"
					}
					last := "-"
					if !e.LastSuppressed.IsZero() {
						last = ago(e.LastSuppressed)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", e.ID, e.RuleID, e.Scope, exp, e.Suppressed, last, e.Author, e.Reason)
				}
			})
		},
	}
	cmd.Flags().StringVar(&rule, "rule", "", "only the exceptions of this rule")

	var (
		req     web.ExceptionRequest
		field   string
		expires string
	)
	add := &cobra.Command{
		Use:   "add --rule ID (--device ID | --class C | --vendor V [--model M] | --field NAME=VALUE) --expires 30d --reason TEXT",
		Short: "Create an exception (audited; the author is your token)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if field != "" {
				name, value, ok := strings.Cut(field, "=")
				if !ok || name == "" || value == "" {
					return fmt.Errorf("--field %q: want NAME=VALUE (source.ip=10.0.0.5)", field)
				}
				req.Field, req.Value = name, value
			}
			if t, err := time.Parse(time.RFC3339, expires); err == nil {
				req.Expires = t
			} else if _, err := web.ParseTTL(expires); err == nil {
				req.TTL = expires
			} else {
				return fmt.Errorf("--expires %q: want a duration (720h), days (30d) or a time (RFC 3339)", expires)
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			defer c.Close()
			e, err := c.AddException(cmd.Context(), req)
			if err != nil {
				return err
			}
			return o.print(cmd.OutOrStdout(), e, func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "exception\t%s\nrule\t%s\nscope\t%s\nexpires\t%s\nauthor\t%s\nreason\t%s\n",
					e.ID, e.RuleID, e.Scope, e.Expires.UTC().Format(time.RFC3339), e.Author, e.Reason)
			})
		},
	}
	f := add.Flags()
	f.StringVar(&req.RuleID, "rule", "", "the rule's id (required)")
	f.StringVar(&req.DeviceID, "device", "", "only on this device")
	f.StringVar(&req.Class, "class", "", "only on devices of this class (a cohort)")
	f.StringVar(&req.Vendor, "vendor", "", "only on devices of this vendor (a cohort)")
	f.StringVar(&req.Model, "model", "", "only on devices of this model (with --vendor)")
	f.StringVar(&field, "field", "", "only alerts with this field value, NAME=VALUE (source.ip=10.0.0.5)")
	f.StringVar(&expires, "expires", "30d", "when it stops applying: a duration (720h), days (30d) or a time (RFC 3339)")
	f.StringVar(&req.Reason, "reason", "", "why (required)")

	remove := &cobra.Command{
		Use:   "remove ID",
		Short: "Delete an exception (audited): the rule alerts on its scope again",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			defer c.Close()
			if err := c.RemoveException(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "exception %s removed\n", args[0])
			return nil
		},
	}

	var days, accept int
	suggest := &cobra.Command{
		Use:   "suggest INCIDENT [--days N] [--accept K]",
		Short: "Show the exceptions proposed for an incident's alerts, with the matching alerts of the last N days; --accept K creates the K-th",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			defer c.Close()
			ss, err := c.SuggestExceptions(cmd.Context(), args[0], days)
			if err != nil {
				return err
			}
			if accept != 0 {
				if accept < 1 || accept > len(ss) {
					return fmt.Errorf("--accept %d: incident %s has %d suggested exceptions", accept, args[0], len(ss))
				}
				e, err := c.AddException(cmd.Context(), web.ExceptionRequest{Exception: ss[accept-1].Exception})
				if err != nil {
					return err
				}
				return o.print(cmd.OutOrStdout(), e, func(tw *tabwriter.Writer) {
					fmt.Fprintf(tw, "exception\t%s\nrule\t%s\nscope\t%s\nexpires\t%s\nreason\t%s\n",
						e.ID, e.RuleID, e.Scope, e.Expires.UTC().Format(time.RFC3339), e.Reason)
				})
			}
			return o.print(cmd.OutOrStdout(), ss, func(tw *tabwriter.Writer) {
				if len(ss) == 0 {
					fmt.Fprintln(tw, "no exception to propose (its alerts have no rule and device)")
				}
				printSuggestions(tw, ss)
			})
		},
	}
	suggest.Flags().IntVar(&days, "days", alert.DefaultSuggestDays, "count the matching alerts of this many days")
	suggest.Flags().IntVar(&accept, "accept", 0, "create the K-th suggested exception (1 is the first listed)")
	cmd.AddCommand(add, remove, suggest)
	return cmd
}

// printSuggestions prints proposed exceptions, each with the command
// that accepts it.
func printSuggestions(tw *tabwriter.Writer, ss []alert.Suggestion) {
	for i, s := range ss {
		more := ""
		if s.More {
			more = " or more"
		}
		fmt.Fprintf(tw, "suggested exception %d\trule %s, %s: %d alerts%s (fired %d times) on %d devices in the last %d days\n",
			i+1, s.Exception.RuleID, s.Scope, s.Alerts, more, s.Fired, s.Devices, s.Days)
		fmt.Fprintf(tw, "  to accept\t%s\n", s.Command)
	}
}

// demoTryNoise tells the user of `vigil demo --keep` how to see and
// silence noise (the connection flags as in the line above).
func demoTryNoise(out io.Writer) {
	fmt.Fprint(out, "  noise: vigil ctl exceptions suggest INCIDENT [--accept 1]   (exceptions proposed for an incident's alerts)\n"+
		"         vigil ctl exceptions add --rule RULE --device DEVICE --expires 30d --reason TEXT\n"+
		"         vigil ctl exceptions   (what each exception suppressed)\n")
}

package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/hunt"
	"github.com/vigil-iot/vigil/web"
)

func ctlHuntCmd(o *ctlOptions) *cobra.Command {
	var cursor, save string
	var shared bool
	cmd := &cobra.Command{
		Use:   "hunt 'QUERY'",
		Short: "Search stored events with a query (an SPL subset, see docs/hunting.md)",
		Long: `Search the stored event history. The query is a subset of Splunk's SPL:

  process.command_line="*curl*" source.ip=10.0.0.0/8 NOT user.name=root
      | stats count, dc(user.name) as users by device.id | sort -count | head 10
  kind=auth outcome=failure | top limit=5 user.name
  earliest=-24h | bin _time span=1h | stats count by _time
  | regex process.command_line="(wget|curl).*\|\s*sh" | table _time device.id process.command_line

Without stats or top it lists events, newest stored first, a page of --limit at a time (--cursor
goes on); with them it prints the table. A result with more than it shows says so below.

--save NAME keeps the query under that name instead of running it (write permission; the
console's Hunt page lists it), as the token's own (--shared shows it to everyone); 'vigil ctl
hunt saved' lists the saved queries, --delete NAME removes one (--author for an admin to
remove another's).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			query := args[0]
			// Checked here first, to point at the error in the terminal.
			if _, err := hunt.Parse(query, time.Now()); err != nil {
				var se *hunt.SyntaxError
				if errors.As(err, &se) {
					return fmt.Errorf("bad query:\n%s", se.Caret(query))
				}
				return err
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			defer c.Close()
			if save != "" {
				q, err := c.SaveQuery(cmd.Context(), save, query, shared)
				if err != nil {
					return err
				}
				return o.print(cmd.OutOrStdout(), q, func(tw *tabwriter.Writer) {
					fmt.Fprintf(tw, "saved %q as %s\n", q.Query, printable(q.Name))
				})
			}
			res, err := c.Hunt(cmd.Context(), web.HuntRequest{Query: query, Limit: o.limit, Cursor: cursor})
			if err != nil {
				return err
			}
			defer func() {
				w := cmd.OutOrStdout()
				if o.output == "json" {
					w = cmd.ErrOrStderr()
				}
				switch {
				case res.Next != "":
					fmt.Fprintf(w, "… more events match: add --cursor %s (or raise --limit)\n", res.Next)
				case res.Truncated:
					fmt.Fprintf(w, "… the table has more rows than --limit %d: raise --limit or add | sort … | head N\n", o.limit)
				}
				if o.output != "json" {
					fmt.Fprintf(w, "%d matched of %d events scanned (%.0f ms)\n", res.Matched, res.Scanned, res.Millis)
				}
			}()
			return o.print(cmd.OutOrStdout(), res, func(tw *tabwriter.Writer) { printHunt(tw, &res.Result) })
		},
	}
	addCursorFlag(cmd, &cursor)
	cmd.Flags().StringVar(&save, "save", "", "save the query under this name instead of running it")
	cmd.Flags().BoolVar(&shared, "shared", false, "with --save: show the saved query to everyone, not only its author")
	cmd.AddCommand(ctlHuntSavedCmd(o))
	return cmd
}

// ctlHuntSavedCmd is `vigil ctl hunt saved`: the saved hunt queries.
func ctlHuntSavedCmd(o *ctlOptions) *cobra.Command {
	var del, author string
	cmd := &cobra.Command{
		Use:   "saved",
		Short: "List the saved hunt queries (--delete NAME removes one)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			defer c.Close()
			if del != "" {
				if err := c.DeleteSavedQuery(cmd.Context(), author, del); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted the saved query %s\n", printable(del))
				return nil
			}
			qs, err := c.SavedQueries(cmd.Context())
			if err != nil {
				return err
			}
			return o.print(cmd.OutOrStdout(), qs, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "NAME\tAUTHOR\tSHARED\tCREATED\tQUERY")
				for _, q := range qs {
					fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\n", printable(q.Name), printable(q.Author), q.Shared, q.Created.Format(time.RFC3339), printable(q.Query))
				}
			})
		},
	}
	cmd.Flags().StringVar(&del, "delete", "", "delete the saved query of this name (the caller's own)")
	cmd.Flags().StringVar(&author, "author", "", `with --delete: the author of the query to delete, when not the caller (admin only), e.g. "user:alice"`)
	return cmd
}

// printHunt prints a table result as it is, and events as time, device,
// kind, action and the other fields as name=value.
func printHunt(tw *tabwriter.Writer, r *hunt.Result) {
	if r.Columns != nil {
		fmt.Fprintln(tw, strings.ToUpper(strings.Join(r.Columns, "\t")))
		for _, row := range r.Rows {
			cells := make([]string, len(row))
			for i, v := range row {
				cells[i] = printable(vigil.ValueString(v))
			}
			fmt.Fprintln(tw, strings.Join(cells, "\t"))
		}
		return
	}
	fmt.Fprintln(tw, "TIME\tDEVICE\tKIND\tACTION\tFIELDS")
	lead := []string{hunt.TimeField, "device.id", "event.kind", "event.action", "event.id", "event.source", "event.provenance"}
	for _, e := range r.Events {
		var rest []string
		for k := range e {
			if !slices.Contains(lead, k) {
				rest = append(rest, k)
			}
		}
		slices.Sort(rest)
		for i, k := range rest {
			rest[i] = k + "=" + printable(vigil.ValueString(e[k]))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", vigil.ValueString(e[hunt.TimeField]), printable(vigil.ValueString(e["device.id"])),
			printable(vigil.ValueString(e["event.kind"])), printable(vigil.ValueString(e["event.action"])), strings.Join(rest, " "))
	}
}

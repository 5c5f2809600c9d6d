package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// newUpdateRepoCmd is `vigil update repo list|sync`: the update
// repositories of the server's config (update.repositories).
func newUpdateRepoCmd(o *ctlOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "repo", Short: "Update repositories the server fetches artifacts from (update.repositories)"}
	list := &cobra.Command{
		Use: "list", Short: "List the repositories with their last sync on the node that answers", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			rs, err := c.UpdateRepositories(cmd.Context())
			if err != nil {
				return err
			}
			return o.print(cmd.OutOrStdout(), rs, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "NAME\tURL\tINTERVAL\tPRODUCTS\tLAST SYNC\tADDED\tPRESENT\tREFUSED\tERROR")
				for _, r := range rs {
					last, added, present, refused, errs := "never", 0, 0, 0, ""
					if l := r.Last; l != nil {
						last, added, present, refused, errs = l.At.Format(time.DateTime), len(l.Added), l.Present, len(l.Refused), l.Error
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", r.Name, r.URL, r.Every, orAny(r.Products), last, added, present, refused, errs)
				}
			})
		},
	}
	sync := &cobra.Command{
		Use: "sync [NAME]", Short: "Read a repository (none named: every one) now and store its new artifacts", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			rs, err := c.SyncUpdateRepositories(cmd.Context(), name)
			if err != nil {
				return err
			}
			return o.print(cmd.OutOrStdout(), rs, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "REPOSITORY\tRESULT\tPRODUCT\tVERSION\tDETAIL")
				for _, r := range rs {
					if r.Error != "" {
						fmt.Fprintf(tw, "%s\tunreadable\t\t\t%s\n", r.Repository, r.Error)
					}
					for _, a := range r.Added {
						fmt.Fprintf(tw, "%s\tadded\t%s\t%s\t%s\n", r.Repository, a.Product, a.Version, a.ID)
					}
					for _, x := range r.Refused {
						fmt.Fprintf(tw, "%s\trefused\t%s\t%s\t%s\n", r.Repository, x.Product, x.Version, x.Reason)
					}
					fmt.Fprintf(tw, "%s\tpresent\t\t\t%d already stored, %d of other products\n", r.Repository, r.Present, r.Filtered)
				}
			})
		},
	}
	cmd.AddCommand(list, sync)
	return cmd
}

package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// ctlGraphCmd is `vigil ctl graph ENTITY`: the entity graph around it.
func ctlGraphCmd(o *ctlOptions) *cobra.Command {
	var (
		depth int
		since string
	)
	cmd := &cobra.Command{
		Use:   "graph ENTITY",
		Short: "Show the entity graph around an entity: what it talked to, logged in as, published to, runs, resolved",
		Long: `Show the relations around an entity, nearest first, each with its count, when it was
first and last seen, and the events that showed it (vigil ctl events ID shows one).
ENTITY is type:value (device:cam-1, ip:203.0.113.66, user:root, mqtt.topic:plant/valves/set,
domain:c2.example.net, software:pkg:generic/busybox@1.24.1, file:<sha256>) or a bare value,
which names every entity with that value.`,
		Example: `  vigil ctl graph ip:203.0.113.66 --depth 2
  vigil ctl graph cam-1 --since 1h`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			defer c.Close()
			v, err := c.Graph(cmd.Context(), args[0], depth, since, o.limit)
			if err != nil {
				return err
			}
			return o.print(cmd.OutOrStdout(), v, func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "ROOT\t%s\n", printable(strings.Join(v.Roots, ", ")))
				fmt.Fprintf(tw, "DEPTH\t%d\n", v.Depth)
				if !v.Since.IsZero() {
					fmt.Fprintf(tw, "SINCE\t%s\n", v.Since.Format(time.RFC3339))
				}
				fmt.Fprintf(tw, "ENTITIES\t%d\n\n", len(v.Entities))
				fmt.Fprintln(tw, "FROM\tRELATION\tTO\tCOUNT\tFIRST SEEN\tLAST SEEN\tEVIDENCE")
				for _, r := range v.Relations {
					ev := r.LastEvent
					if r.FirstEvent != r.LastEvent && r.FirstEvent != "" {
						ev = r.FirstEvent + " … " + r.LastEvent
					}
					// Entity values come from devices: never raw to the terminal.
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", printable(r.From), r.Rel, printable(r.To), r.Count,
						r.FirstSeen.Format(time.DateTime), r.LastSeen.Format(time.DateTime), printable(ev))
				}
				if v.Truncated {
					fmt.Fprintf(tw, "… more relations: raise --limit (%d shown) or narrow with --since\n", len(v.Relations))
				}
			})
		},
	}
	cmd.Flags().IntVar(&depth, "depth", 1, "how many relations away to go (1 to 5)")
	cmd.Flags().StringVar(&since, "since", "", "only relations seen since then: a duration ago (24h) or an RFC 3339 time")
	return cmd
}

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/hunt"
	"github.com/vigil-iot/vigil/web"
)

func ctlRetrohuntCmd(o *ctlOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "retrohunt",
		Short: "Run Sigma rules or indicators over stored events (start, status)",
		Long: `A retro-hunt runs Sigma rules (the built-in pack, or a rule file) and/or an indicator list
over the stored event history as a job on the server. What fires becomes alerts marked retro,
which go through dedup, incidents and response like live ones. New indicators of an intel feed
are hunted for automatically over the last retro_intel (default 7 days).`,
	}
	var (
		rulesArg, indicators, since, until string
		wait                               bool
	)
	start := &cobra.Command{
		Use:   "start",
		Short: "Start a retro-hunt: --rules builtin|FILE.yml, --indicators FILE, --since, --until",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			in := web.RetroRequest{Since: since, Until: until}
			switch {
			case rulesArg == "builtin":
				in.Rules = "builtin"
			case rulesArg != "":
				b, err := os.ReadFile(rulesArg)
				if err != nil {
					return fmt.Errorf("cannot read rules: %w", err)
				}
				in.RulesYAML, in.RulesName = string(b), filepath.Base(rulesArg)
			}
			if indicators != "" {
				b, err := os.ReadFile(indicators)
				if err != nil {
					return fmt.Errorf("cannot read indicators: %w", err)
				}
				sc := bufio.NewScanner(bytes.NewReader(b))
				for sc.Scan() {
					l := strings.TrimSpace(sc.Text())
					if l != "" && !strings.HasPrefix(l, "#") {
						in.Indicators = append(in.Indicators, l)
					}
				}
			}
			if in.Rules == "" && in.RulesYAML == "" && len(in.Indicators) == 0 {
				return fmt.Errorf("nothing to run: give --rules builtin, --rules FILE.yml or --indicators FILE")
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			defer c.Close()
			job, err := c.StartRetrohunt(cmd.Context(), in)
			if err != nil {
				return err
			}
			for wait && job.State == "running" {
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(time.Second):
				}
				if job, err = c.Retrohunt(cmd.Context(), job.ID); err != nil {
					return err
				}
				if o.output != "json" {
					fmt.Fprintf(cmd.ErrOrStderr(), "\r%5.1f%%  %d events, %d alerts", job.Progress*100, job.Scanned, job.Alerts)
				}
			}
			if wait && o.output != "json" {
				fmt.Fprintln(cmd.ErrOrStderr())
			}
			return o.print(cmd.OutOrStdout(), job, func(tw *tabwriter.Writer) { printJobs(tw, []hunt.RetroJob{job}) })
		},
	}
	f := start.Flags()
	f.StringVar(&rulesArg, "rules", "", "builtin (the built-in Sigma pack) or a Sigma rule file")
	f.StringVar(&indicators, "indicators", "", "a file of indicators, one a line (addresses, domains, hashes, ...)")
	f.StringVar(&since, "since", "", "only events from then on: -7d, -24h, a date or RFC 3339 (default: all)")
	f.StringVar(&until, "until", "", "only events before then (default: all)")
	f.BoolVar(&wait, "wait", false, "wait for the job to end, showing progress")
	status := &cobra.Command{
		Use:   "status [ID]",
		Short: "Show a retro-hunt job, or list them",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			defer c.Close()
			var jobs []hunt.RetroJob
			if len(args) == 1 {
				j, err := c.Retrohunt(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return o.print(cmd.OutOrStdout(), j, func(tw *tabwriter.Writer) { printJobs(tw, []hunt.RetroJob{j}) })
			}
			if jobs, err = c.Retrohunts(cmd.Context()); err != nil {
				return err
			}
			return o.print(cmd.OutOrStdout(), jobs, func(tw *tabwriter.Writer) { printJobs(tw, jobs) })
		},
	}
	cmd.AddCommand(start, status)
	return cmd
}

func printJobs(tw *tabwriter.Writer, jobs []hunt.RetroJob) {
	fmt.Fprintln(tw, "ID\tSTATE\tPROGRESS\tEVENTS\tALERTS\tWHAT\tSTARTED\tERROR")
	for _, j := range jobs {
		var what []string
		if j.Spec.RulesName != "" {
			what = append(what, "rules "+j.Spec.RulesName)
		}
		if n := len(j.Spec.Indicators) + j.Spec.IntelCount; n > 0 {
			what = append(what, fmt.Sprintf("%d indicators %s", n, j.Spec.IndicatorSource))
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f%%\t%d\t%d\t%s\t%s\t%s\n", j.ID, j.State, j.Progress*100, j.Matched, j.Alerts,
			printable(strings.Join(what, ", ")), j.Started.Format(time.DateTime), printable(j.Error))
	}
}

// retroMark marks an alert of a retro-hunt in the alerts table (the
// detail and JSON show its retro field).
func retroMark(a vigil.Alert) string {
	if a.Retro {
		return "[retro] "
	}
	return ""
}

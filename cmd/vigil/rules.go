package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-iot/vigil/detect/baseline"
	"github.com/vigil-iot/vigil/detect/sigma"
)

func newRulesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "rules", Short: "Check and test Sigma rules"}
	var mapping string
	cmd.PersistentFlags().StringVar(&mapping, "mapping", "", "Sigma mapping config (default: the built-in one)")
	loadCfg := func() (*sigma.Config, error) {
		if mapping == "" {
			return sigma.DefaultConfig(), nil
		}
		return sigma.LoadConfig(mapping)
	}

	check := &cobra.Command{
		Use:   "check DIR|FILE...",
		Short: "Compile rules; print each rejected rule with file, line and reason",
		Long: `Compile every .yml/.yaml rule under the given directories (recursively) and print each
rejected rule with its file, line and reason, then one line:
  rules: total=<N> compiled=<C> rejected=<R>
Exits 0 when nothing was rejected, 1 otherwise.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadCfg()
			if err != nil {
				return err
			}
			_, res := sigma.Check(args, cfg)
			out := cmd.OutOrStdout()
			for _, e := range res.Errors {
				fmt.Fprintln(out, e.Error())
			}
			if res.Unvalued > 0 {
				fmt.Fprintf(out, "note: %d compiled rules expand placeholders declared without values; they match nothing through them until --mapping gives yours (docs/sigma.md)\n", res.Unvalued)
			}
			fmt.Fprintln(out, res.Summary())
			if res.Rejected > 0 {
				return exitCode(1)
			}
			return nil
		},
	}

	var ruleFile, eventsFile, output string
	test := &cobra.Command{
		Use:   "test --rule FILE --events FILE.jsonl",
		Short: "Evaluate one rule file on NDJSON events, whatever their logsource, and say why each matched",
		Long: `Evaluate the rules of one file on each event of an NDJSON file (flat or nested JSON
objects), ignoring logsources, and print for each event whether each rule matched and which of
its selections did. Exits 0 when at least one event matched, 1 when none did.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadCfg()
			if err != nil {
				return err
			}
			in, err := openInput(eventsFile)
			if err != nil {
				return err
			}
			defer in.Close()
			results, matched, loadErrs, err := sigma.TestRuleFile(ruleFile, in, cfg)
			for _, e := range loadErrs {
				fmt.Fprintln(cmd.ErrOrStderr(), e.Error())
			}
			if err != nil {
				return err
			}
			if len(loadErrs) > 0 {
				return exitCode(2)
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				enc := json.NewEncoder(out)
				for _, r := range results {
					enc.Encode(r)
				}
			} else {
				for _, r := range results {
					fmt.Fprintln(out, sigma.FormatResult(r))
				}
			}
			fmt.Fprintf(out, "rules test: matched %d event(s)\n", matched)
			if matched == 0 {
				return exitCode(1)
			}
			return nil
		},
	}
	test.Flags().StringVar(&ruleFile, "rule", "", "rule file")
	test.Flags().StringVar(&eventsFile, "events", "", "NDJSON events (- for stdin)")
	test.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	test.MarkFlagRequired("rule")
	test.MarkFlagRequired("events")

	cmd.AddCommand(check, test)
	cmd.AddCommand(rulesServerCmds()...)
	return cmd
}

// rulesServerCmds are the commands that manage a running server's Sigma
// rules through its API, with the connection flags of vigil ctl. A server
// also reloads by itself when a file of its --sigma directories changes.
func rulesServerCmds() []*cobra.Command {
	o := &ctlOptions{}
	list := &cobra.Command{
		Use: "list", Short: "List a running server's Sigma rules with match counts and evaluation time", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			l, err := c.ListRules(cmd.Context())
			if err != nil {
				return err
			}
			return o.print(cmd.OutOrStdout(), l, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "ID\tLEVEL\tENABLED\tMATCHES\tEVAL µs/EVENT\tTITLE")
				for _, r := range l.Items {
					per := 0.0
					if r.Evals > 0 {
						per = float64(r.EvalNanos) / float64(r.Evals) / 1e3
					}
					fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%.2f\t%s\n", r.ID, r.Level, r.Enabled, r.Matches, per, r.Title)
				}
				fmt.Fprintf(tw, "\nloaded %s: %d compiled, %d rejected\n", l.Last.Loaded.Format(time.DateTime), l.Last.Compiled, len(l.Last.Rejected))
			})
		},
	}
	reloadCmd := &cobra.Command{
		Use: "reload", Short: "Make a running server compile its Sigma rules again and swap them in", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			res, err := c.ReloadRules(cmd.Context())
			if err != nil {
				return err
			}
			for _, e := range res.Rejected {
				fmt.Fprintln(cmd.OutOrStdout(), e.Error())
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rules: compiled=%d rejected=%d\n", res.Compiled, len(res.Rejected))
			return nil
		},
	}
	toggle := func(on bool) *cobra.Command {
		use := "disable"
		if on {
			use = "enable"
		}
		return &cobra.Command{
			Use: use + " ID|NAME|TAG", Short: "Turn " + map[bool]string{true: "on", false: "off"}[on] + " the rules with an id, name or tag (kept across reloads)",
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := o.client()
				if err != nil {
					return err
				}
				n, err := c.SetRulesEnabled(cmd.Context(), args[0], on)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%sd %d rule(s)\n", use, n)
				return nil
			},
		}
	}
	cmds := []*cobra.Command{list, reloadCmd, toggle(true), toggle(false)}
	for _, c := range cmds {
		o.addFlags(c)
	}
	return cmds
}

func newDetectCmd() *cobra.Command {
	var dirs []string
	var input, mapping, cpuProfile, learn, intelDir string
	var window time.Duration
	var noExplain bool
	cmd := &cobra.Command{
		Use:   "detect [--rules DIR] [--learn LEARN.jsonl] --input FILE.jsonl",
		Short: "Offline Sigma detection over NDJSON events: alerts on stdout, a summary on stderr",
		Long: `Run Sigma rules over NDJSON events offline. Events carry their logsource in
logsource.product / logsource.category / logsource.service (or a Vigil event kind). Matches are
written to stdout as NDJSON alerts, each with its explanation as vigil serve stores it (the rule,
the values that matched, an excerpt of the event; --no-explain leaves it out of plain matches for
the fastest run); the last line on stderr is
  detect: events=<N> matches=<M> seconds=<S> events_per_second=<E>

Without --rules, the whole built-in detection set runs, as vigil serve runs it: the threshold
rules, the Sigma pack and the learned baseline (learning as the server's does, for 24 h of
event time, unless --learn), and with --intel DATA_DIR the intel feeds imported into that
server's data dir; the last line on stderr is
  detect: learned=<L> events=<N> alerts=<A>

With --learn, the learned baseline (docs/anomaly.md) first learns from LEARN.jsonl (vigil.Event
lines, as vigil sensor --output writes them; its learning ends at the end of the file, whatever
its length), then the baseline and the Sigma rules (--rules, or the built-in pack) run over
--input as vigil serve runs them, baseline.* fields included. Alerts are written as NDJSON, each
with its severity and, for the baseline's, an explanation in fields.explanation; the last line on stderr is
  detect: learned=<L> events=<N> alerts=<A>`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg := sigma.DefaultConfig()
			if mapping != "" {
				var err error
				if cfg, err = sigma.LoadConfig(mapping); err != nil {
					return err
				}
			}
			if learn != "" || len(dirs) == 0 {
				return learnDetect(cmd, learn, input, dirs, cfg, mapping, window, intelDir)
			}
			rs, errs := sigma.LoadDirs(dirs, cfg)
			for _, e := range errs {
				fmt.Fprintln(cmd.ErrOrStderr(), "rejected:", e.Error())
			}
			in, err := openInput(input)
			if err != nil {
				return err
			}
			defer in.Close()
			stop, err := startCPUProfile(cpuProfile)
			if err != nil {
				return err
			}
			st, err := sigma.DetectStreamWith(in, cmd.OutOrStdout(), rs, sigma.StreamOptions{NoExplain: noExplain})
			if st.BadLines > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "detect: %d bad lines skipped, first: %s\n", st.BadLines, st.FirstBad)
			}
			stop()
			fmt.Fprintln(cmd.ErrOrStderr(), st.String())
			return err
		},
	}
	cmd.Flags().StringSliceVar(&dirs, "rules", nil, "rule directories or files")
	cmd.Flags().StringVar(&input, "input", "-", "NDJSON events (- for stdin)")
	cmd.Flags().StringVar(&mapping, "mapping", "", "Sigma mapping config (default: the built-in one)")
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the detection run to this file")
	cmd.Flags().StringVar(&learn, "learn", "", "NDJSON events to learn the baseline from before detecting (runs the learned baseline)")
	cmd.Flags().DurationVar(&window, "window", baseline.DefaultWindow, "the learned baseline's rate window (with --learn or without --rules)")
	cmd.Flags().StringVar(&intelDir, "intel", "", "without --rules: also match the intel feeds imported into this server data dir")
	cmd.Flags().BoolVar(&noExplain, "no-explain", false, "with --rules: leave the explanation out of plain Sigma matches (faster)")
	return cmd
}

func openInput(name string) (io.ReadCloser, error) {
	if name == "-" || name == "" {
		return io.NopCloser(os.Stdin), nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("cannot open input: %w", err)
	}
	return f, nil
}

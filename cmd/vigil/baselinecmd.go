package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/bus"
	"github.com/vigil-iot/vigil/detect/baseline"
	"github.com/vigil-iot/vigil/node"
	"github.com/vigil-iot/vigil/sensor"
)

// newBaselineCmd is `vigil baseline`: show and reset the learned baseline
// of a running server, and learn a baseline file offline.
func newBaselineCmd() *cobra.Command {
	o := &ctlOptions{}
	cmd := &cobra.Command{
		Use:   "baseline",
		Short: "Show or reset the learned baseline of a server, or learn a baseline file offline",
		Long: `show and reset talk to a running server through its API (--server, --token, --ca or
VIGIL_SERVER, VIGIL_TOKEN, VIGIL_CA, as vigil ctl does). learn works offline and writes a file
that vigil serve --baseline FILE starts from. "This is normal" on an alert is
vigil ctl alerts normal ID [--cohort].`,
	}
	o.addFlags(cmd)
	cmd.AddCommand(baselineShowCmd(o), baselineResetCmd(o), baselineLearnCmd())
	return cmd
}

func baselineShowCmd(o *ctlOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "show DEVICE|COHORT",
		Short: "Show what the baseline learned for a device (its id, or ip:ADDRESS) or a cohort (class, or class/vendor/model)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			defer c.Close()
			v, err := c.GetBaseline(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return o.print(cmd.OutOrStdout(), v, func(tw *tabwriter.Writer) {
				rates := func(rs map[string]baseline.RateView) {
					names := make([]string, 0, len(rs))
					for n := range rs {
						names = append(names, n)
					}
					sort.Strings(names)
					for _, n := range names {
						r := rs[n]
						if r.Windows == 0 {
							continue
						}
						fmt.Fprintf(tw, "  rate %s\tmedian %.1f, MAD %.1f, at most %.0f per window (%d windows)\n", n, r.Median, r.MAD, r.ExpectedMax, r.Windows)
					}
				}
				for _, d := range v.Devices {
					fmt.Fprintf(tw, "device %s\tpartition %d, cohort %s, judged against: %s\n", d.Key, d.Partition, d.Cohort, d.JudgedAgainst)
					fmt.Fprintf(tw, "  learned\t%s over %d events (%s to %s)\n", time.Duration(d.LearnedSeconds*float64(time.Second)).Round(time.Second),
						d.Events, d.First.Format(time.RFC3339), d.Last.Format(time.RFC3339))
					feats := make([]string, 0, len(d.Values))
					for f := range d.Values {
						feats = append(feats, f)
					}
					sort.Strings(feats)
					for _, f := range feats {
						fmt.Fprintf(tw, "  values %s\t%d\n", f, d.Values[f])
					}
					rates(d.Rates)
				}
				for _, co := range v.Cohorts {
					state := "judging"
					if co.Learning {
						state = "learning"
					}
					fmt.Fprintf(tw, "cohort %s\tpartition %d, %d members, %s\n", co.Key, co.Partition, co.Members, state)
					fmt.Fprintf(tw, "  learned\t%s over %d events; %d values counted, %d marked normal\n",
						time.Duration(co.LearnedSeconds*float64(time.Second)).Round(time.Second), co.Events, co.Values, co.Normal)
					rates(co.Rates)
				}
			})
		},
	}
}

func baselineResetCmd(o *ctlOptions) *cobra.Command {
	var kind string
	cmd := &cobra.Command{
		Use:   "reset DEVICE|COHORT [--kind device|cohort]",
		Short: "Forget what the baseline learned for a device, or a cohort and its members: they learn again (admin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			defer c.Close()
			r, err := c.ResetBaseline(cmd.Context(), args[0], baseline.Kind(kind))
			if err != nil {
				return err
			}
			return o.print(cmd.OutOrStdout(), r, func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "%s\treset in partitions %v: it learns again\n", r.Name, r.Partitions)
			})
		},
	}
	cmd.Flags().StringVar(&kind, "kind", "", "device or cohort, when the name is both")
	return cmd
}

// ctlAlertNormalCmd is `vigil ctl alerts normal ID`.
func ctlAlertNormalCmd(o *ctlOptions) *cobra.Command {
	var cohort bool
	cmd := &cobra.Command{
		Use:   "normal ID [--cohort]",
		Short: "This is normal: fold a learned-baseline alert into the device's baseline (and its cohort's with --cohort)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			defer c.Close()
			fb, err := c.MarkNormal(cmd.Context(), args[0], cohort)
			if err != nil {
				return err
			}
			return o.print(cmd.OutOrStdout(), fb, func(tw *tabwriter.Writer) { fmt.Fprintln(tw, fb.String()) })
		},
	}
	cmd.Flags().BoolVar(&cohort, "cohort", false, "also mark it normal for every device of the cohort")
	return cmd
}

func baselineLearnCmd() *cobra.Command {
	var (
		input, output string
		pcaps         []string
		partitions    int
		window        time.Duration
	)
	cmd := &cobra.Command{
		Use:   "learn (--input EVENTS.jsonl | --pcap FILE...) --output BASELINE.json",
		Short: "Learn a baseline file from events or captures, for vigil serve --baseline",
		Long: `Learn the baseline from NDJSON events (vigil.Event lines, as vigil sensor --output writes
them) or from capture files (decoded by the sensor, as vigil sensor --pcap F --output - does),
and write it to a file. Learning is complete at the end of the input, whatever its length:
vigil serve --baseline FILE judges from the first event. Events are split into partitions as the
server's bus does, so --partitions and --window must be the server's (partitions, baseline.window).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if (input == "") == (len(pcaps) == 0) {
				return fmt.Errorf("give exactly one of --input and --pcap")
			}
			if output == "" {
				return fmt.Errorf("--output is required")
			}
			if partitions < 1 || partitions > 1024 {
				return fmt.Errorf("--partitions %d is not in 1..1024", partitions)
			}
			if window < time.Second {
				return fmt.Errorf("--window must be at least 1s")
			}
			var in io.Reader
			var sensorErr chan error
			if input != "" {
				f, err := openInput(input)
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			} else {
				pr, pw := io.Pipe()
				in = pr
				sensorErr = make(chan error, 1)
				go func() {
					bw := bufio.NewWriterSize(pw, 1<<16)
					_, err := sensor.Run(cmd.Context(), sensor.Config{Pcaps: pcaps, Output: bw, Logger: newLogger(cmd.ErrOrStderr(), "warn")})
					if ferr := bw.Flush(); err == nil {
						err = ferr
					}
					pw.CloseWithError(err)
					sensorErr <- err
				}()
				defer pr.Close()
			}
			bf, st, err := learnBaselineFile(in, partitions, window)
			if sensorErr != nil {
				if serr := <-sensorErr; serr != nil && err == nil {
					err = fmt.Errorf("cannot decode captures: %w", serr)
				}
			}
			if st.BadLines > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "baseline: %d bad lines skipped, first: %s\n", st.BadLines, st.FirstBad)
			}
			if err != nil {
				return err
			}
			b, err := json.Marshal(bf)
			if err != nil {
				return fmt.Errorf("cannot encode baseline file: %w", err)
			}
			if err := os.WriteFile(output, b, 0o600); err != nil {
				return fmt.Errorf("cannot write baseline file: %w", err)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "baseline: learned=%d devices=%d cohorts=%d partitions=%d file=%s\n", bf.Learned, st.Devices, st.Cohorts, partitions, output)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&input, "input", "", "NDJSON events to learn from (- for stdin)")
	f.StringSliceVar(&pcaps, "pcap", nil, "capture files to learn from (decoded by the sensor)")
	f.StringVar(&output, "output", "", "baseline file to write")
	f.IntVar(&partitions, "partitions", node.DefaultConfig().Partitions, "the server's event partitions")
	f.DurationVar(&window, "window", baseline.DefaultWindow, "the server's baseline.window")
	return cmd
}

// learnStats summarize a run of `vigil baseline learn`.
type learnStats struct {
	Devices, Cohorts int
	BadLines         int
	FirstBad         string
}

// learnBaselineFile learns from NDJSON events, each in the partition the
// bus would give it, ends the learning, and returns the file.
func learnBaselineFile(in io.Reader, partitions int, window time.Duration) (*node.BaselineFile, learnStats, error) {
	var st learnStats
	det := baseline.New(baseline.Options{Window: window})
	learned := 0
	err := readEventLines(in, func(line int, ev *vigil.Event, err error) {
		if err != nil {
			st.BadLines++
			if st.FirstBad == "" {
				st.FirstBad = fmt.Sprintf("line %d: %v", line, err)
			}
			return
		}
		det.Learn(bus.Partition(ev.DeviceID, partitions), ev)
		learned++
	})
	if err != nil {
		return nil, st, fmt.Errorf("cannot read the events to learn: %w", err)
	}
	det.FinishLearning()
	bf := &node.BaselineFile{Version: node.BaselineFileVersion, Partitions: partitions, Window: window.String(), Learned: learned}
	for p := range partitions {
		snap, err := det.Snapshot(p)
		if err != nil {
			return nil, st, err
		}
		bf.States = append(bf.States, snap)
	}
	s := det.Stats()
	st.Devices, st.Cohorts = s.Devices, s.Cohorts
	return bf, st, nil
}

// printFalsePositive prints what resolving as a false positive offers
// about the learned baseline.
func printFalsePositive(tw *tabwriter.Writer, fp *baseline.FalsePositive) {
	if fp == nil {
		return
	}
	for _, c := range fp.Alerts {
		fmt.Fprintf(tw, "baseline alert\t%s  %s\n", c.AlertID, c.Title)
	}
	for _, fb := range fp.Learned {
		fmt.Fprintf(tw, "marked normal\t%s\n", fb.String())
	}
	for _, e := range fp.Errors {
		fmt.Fprintf(tw, "not marked\t%s\n", e)
	}
	if fp.How != "" {
		fmt.Fprintf(tw, "to mark normal\t%s\n", fp.How)
	}
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/detect"
	"github.com/vigil-iot/vigil/detect/baseline"
	"github.com/vigil-iot/vigil/detect/intel"
	"github.com/vigil-iot/vigil/detect/sigma"
	"github.com/vigil-iot/vigil/node"
)

// maxEventLine bounds one NDJSON event line of `vigil detect --learn`.
const maxEventLine = 16 << 20

// learnDetectOptions configure `vigil detect --learn`, and `vigil detect`
// without --rules.
type learnDetectOptions struct {
	learn, input io.Reader // learn may be nil: the baseline learns as vigil serve's does
	dirs         []string  // Sigma rule directories; empty: the whole built-in set (loadDetectors)
	mapping      *sigma.Config
	mappingFile  string // the file of mapping, for loadDetectors
	window       time.Duration
	intelDir     string    // a server's data dir whose intel feeds to match (empty: none)
	rejected     io.Writer // where rejected rules of dirs are reported
}

// learnDetectStats summarize a run of `vigil detect --learn`.
type learnDetectStats struct {
	Learned  int    `json:"learned"`
	Events   int    `json:"events"`
	Alerts   int    `json:"alerts"`
	BadLines int    `json:"bad_lines"`
	FirstBad string `json:"first_bad,omitempty"`
}

func (s learnDetectStats) String() string {
	return fmt.Sprintf("detect: learned=%d events=%d alerts=%d", s.Learned, s.Events, s.Alerts)
}

// runLearnDetect learns the baseline from o.learn (its learning ends at
// the end of the file, whatever its length), then runs the detectors over
// o.input as the detection stage of `vigil serve` does (the baseline's
// enrichment first), writing alerts as NDJSON to w. The detectors are the
// baseline and the Sigma rules of o.dirs, or without dirs the whole set
// vigil serve runs (loadDetectors: the threshold rules, the Sigma pack,
// the baseline) and the intel of o.intelDir.
func runLearnDetect(o learnDetectOptions, w io.Writer) (learnDetectStats, error) {
	var st learnDetectStats
	var dets []detect.Detector
	var bl *baseline.Detector
	if len(o.dirs) > 0 {
		rs, errs := sigma.LoadDirs(o.dirs, o.mapping)
		for _, e := range errs {
			fmt.Fprintln(o.rejected, "rejected:", e.Error())
		}
		bl = baseline.New(baseline.Options{Window: o.window})
		dets = []detect.Detector{bl, sigma.NewDetector(rs, sigma.DetectorOptions{})}
	} else {
		cfg := node.DefaultConfig()
		cfg.SigmaMapping = o.mappingFile
		cfg.Baseline.Window = node.Duration(o.window)
		var err error
		if dets, bl, err = node.Detectors(cfg, slog.New(slog.DiscardHandler)); err != nil {
			return st, err
		}
		if o.intelDir != "" {
			if _, err := os.Stat(filepath.Join(o.intelDir, "vigil.db")); err != nil {
				if _, err := os.Stat(filepath.Join(o.intelDir, "intel")); err != nil { // feed files of an older version
					return st, fmt.Errorf("cannot read the intel of %s: no vigil.db", o.intelDir)
				}
			}
			det := intel.New(slog.New(slog.DiscardHandler), nil)
			_, db, err := openDataDirIntel(context.Background(), o.intelDir, det.Load)
			if err != nil {
				return st, err
			}
			db.Close()
			dets = append(dets, det)
		}
	}
	stage := detect.NewStage(nil, dets, detect.StageOptions{})

	bad := func(file string, line int, err error) {
		st.BadLines++
		if st.FirstBad == "" {
			st.FirstBad = fmt.Sprintf("%s line %d: %v", file, line, err)
		}
	}
	if o.learn != nil {
		err := readEventLines(o.learn, func(line int, ev *vigil.Event, err error) {
			if err != nil {
				bad("learn", line, err)
				return
			}
			bl.Learn(0, ev)
			st.Learned++
		})
		if err != nil {
			return st, fmt.Errorf("cannot read the events to learn: %w", err)
		}
		bl.FinishLearning()
	}

	bw := bufio.NewWriterSize(w, 1<<16)
	enc := json.NewEncoder(bw)
	var werr error
	batch := make([]vigil.Event, 1)
	err := readEventLines(o.input, func(line int, ev *vigil.Event, err error) {
		if err != nil {
			bad("input", line, err)
			return
		}
		if werr != nil {
			return
		}
		st.Events++
		batch[0] = *ev
		for _, a := range stage.Evaluate(context.Background(), 0, batch) {
			st.Alerts++
			if werr = enc.Encode(a); werr != nil {
				return
			}
		}
	})
	if err != nil {
		return st, fmt.Errorf("cannot read events: %w", err)
	}
	if werr != nil {
		return st, fmt.Errorf("cannot write alerts: %w", werr)
	}
	if err := bw.Flush(); err != nil {
		return st, fmt.Errorf("cannot write alerts: %w", err)
	}
	return st, nil
}

// readEventLines decodes r as NDJSON vigil.Event lines and calls fn for
// each non-blank line, with the decoding error of a bad one (which says
// where in the line). It returns only read errors.
func readEventLines(r io.Reader, fn func(line int, ev *vigil.Event, err error)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), maxEventLine)
	n := 1
	for ; sc.Scan(); n++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var ev vigil.Event
		if err := json.Unmarshal(b, &ev); err != nil {
			fn(n, nil, vigil.JSONErrorAt(err))
			continue
		}
		if ev.Time.IsZero() {
			fn(n, nil, fmt.Errorf("no time"))
			continue
		}
		fn(n, &ev, nil)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("line %d: %w (a line may have at most %d bytes)", n, err, maxEventLine)
	}
	return nil
}

// learnDetect is `vigil detect --learn`, and `vigil detect` without
// --rules (learn empty: no learning first).
func learnDetect(cmd *cobra.Command, learn, input string, dirs []string, mapping *sigma.Config, mappingFile string, window time.Duration, intelDir string) error {
	o := learnDetectOptions{dirs: dirs, mapping: mapping, mappingFile: mappingFile, window: window, intelDir: intelDir, rejected: cmd.ErrOrStderr()}
	if learn != "" {
		lf, err := os.Open(learn)
		if err != nil {
			return fmt.Errorf("cannot open the events to learn: %w", err)
		}
		defer lf.Close()
		o.learn = lf
	}
	in, err := openInput(input)
	if err != nil {
		return err
	}
	defer in.Close()
	o.input = in
	st, err := runLearnDetect(o, cmd.OutOrStdout())
	if st.BadLines > 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "detect: %d bad lines skipped, first: %s\n", st.BadLines, st.FirstBad)
	}
	fmt.Fprintln(cmd.ErrOrStderr(), st.String())
	return err
}

package node

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/audit"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/detect"
	"github.com/vigil-iot/vigil/detect/baseline"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/web"
	"github.com/vigil-iot/vigil/web/api"
)

// baselineState keeps the learned baseline of a running server: its
// checkpoints through the store (restored at start, saved every
// baseline.checkpoint and after each change from the API) and the API of
// feedback, show and reset.
type baselineState struct {
	det   *baseline.Detector
	st    store.Baselines
	alert interface {
		GetAlert(ctx context.Context, id string) (vigil.Alert, error)
	}
	every time.Duration
	log   *slog.Logger
	save  sync.Mutex // one save at a time: a later one must not be overwritten by an earlier
}

// BaselineFileVersion is the version of the files `vigil baseline learn`
// writes.
const BaselineFileVersion = 1

// maxBaselineFile bounds a baseline file `vigil serve --baseline` reads.
const maxBaselineFile = 1 << 30

// BaselineFile is a learned baseline on disk: the snapshot of each bus
// partition, learned with the same partitions and window as the server
// that starts from it.
type BaselineFile struct {
	Version    int               `json:"vigil_baseline"`
	Partitions int               `json:"partitions"`
	Window     string            `json:"window"`
	Learned    int               `json:"learned"` // events learned from
	States     []json.RawMessage `json:"states"`  // by partition
}

// findBaseline returns the learned baseline among detectors, or nil.
func findBaseline(dets []detect.Detector) *baseline.Detector {
	for _, d := range dets {
		if b, ok := d.(*baseline.Detector); ok {
			return b
		}
	}
	return nil
}

// openBaseline restores the learned baseline of each partition: from its
// checkpoint in the store, else from the baseline file when one is
// configured. A checkpoint that does not restore is logged and that
// partition learns afresh; a baseline file that does not is an error.
func (a *Node) openBaseline(ctx context.Context, dets []detect.Detector) error {
	det := findBaseline(dets)
	if det == nil {
		return nil
	}
	bs := &baselineState{det: det, st: a.store, alert: a.store, every: time.Duration(a.cfg.Baseline.Checkpoint),
		log: a.log.With("component", "baseline")}
	var file *BaselineFile
	if name := a.cfg.Baseline.File; name != "" {
		f, err := readBaselineFile(name)
		if err != nil {
			return err
		}
		if f.Partitions != a.cfg.Partitions {
			return fmt.Errorf("cannot start from baseline file %s: learned for %d partitions, the server has %d (learn it again with --partitions %d)",
				name, f.Partitions, a.cfg.Partitions, a.cfg.Partitions)
		}
		if w := time.Duration(a.cfg.Baseline.Window).String(); f.Window != w {
			return fmt.Errorf("cannot start from baseline file %s: learned with a %s window, baseline.window is %s", name, f.Window, w)
		}
		file = f
	}
	restored, fromFile := 0, 0
	for p := range a.cfg.Partitions {
		b, err := a.store.GetBaseline(ctx, p)
		if err == nil {
			state, derr := gunzip(b.State)
			if derr == nil {
				derr = det.Restore(p, state)
			}
			if derr != nil {
				bs.log.Error("baseline checkpoint not restored: the partition learns afresh", "partition", p, "saved", b.Saved, "err", derr)
				continue
			}
			restored++
			continue
		}
		if vigil.ErrorCode(err) != vigil.ENOTFOUND {
			return fmt.Errorf("cannot read the baseline checkpoint of partition %d: %w", p, err)
		}
		if file != nil && p < len(file.States) {
			if err := det.Restore(p, file.States[p]); err != nil {
				return fmt.Errorf("cannot start from baseline file %s: %w", a.cfg.Baseline.File, err)
			}
			det.MarkDirty(p) // saved at the first checkpoint
			fromFile++
		}
	}
	if restored > 0 || fromFile > 0 {
		bs.log.Info("baseline restored", "from_checkpoints", restored, "from_file", fromFile, "file", a.cfg.Baseline.File)
	}
	if file != nil && restored > 0 {
		bs.log.Warn("baseline file used only for partitions without a checkpoint: the checkpoints hold what was learned since", "file", a.cfg.Baseline.File)
	}
	a.baseline = bs
	return nil
}

// readBaselineFile reads and checks a file of `vigil baseline learn`.
func readBaselineFile(name string) (*BaselineFile, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("cannot open baseline file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxBaselineFile+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read baseline file %s: %w", name, err)
	}
	if len(b) > maxBaselineFile {
		return nil, fmt.Errorf("cannot read baseline file %s: more than %d bytes", name, maxBaselineFile)
	}
	var bf BaselineFile
	if err := json.Unmarshal(b, &bf); err != nil {
		return nil, fmt.Errorf("cannot read baseline file %s: %w", name, vigil.JSONErrorAt(err))
	}
	if bf.Version != BaselineFileVersion {
		return nil, fmt.Errorf("cannot read baseline file %s: version %d, want %d (made by vigil baseline learn)", name, bf.Version, BaselineFileVersion)
	}
	if bf.Partitions < 1 || len(bf.States) != bf.Partitions {
		return nil, fmt.Errorf("cannot read baseline file %s: %d states for %d partitions", name, len(bf.States), bf.Partitions)
	}
	return &bf, nil
}

// run saves the partitions changed every interval until ctx ends, then
// once more.
func (bs *baselineState) run(ctx context.Context) error {
	t := time.NewTicker(bs.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := bs.saveDirty(sctx); err != nil {
				bs.log.Error("last baseline checkpoint failed", "err", err)
			}
			return nil
		case <-t.C:
		}
		if err := bs.saveDirty(ctx); err != nil {
			bs.log.Error("baseline checkpoint failed: retried at the next", "err", err)
		}
	}
}

// saveDirty saves the partitions changed since the last save.
func (bs *baselineState) saveDirty(ctx context.Context) error {
	return bs.saveParts(ctx, bs.det.TakeDirty())
}

// saveParts saves partitions now; those that fail are marked to be saved
// again.
func (bs *baselineState) saveParts(ctx context.Context, parts []int) error {
	bs.save.Lock()
	defer bs.save.Unlock()
	var errs []error
	for i, p := range parts {
		at := time.Now().UTC()
		snap, err := bs.det.Snapshot(p)
		if err == nil {
			var z []byte
			if z, err = gzipBytes(snap); err == nil {
				err = bs.st.PutBaseline(ctx, store.Baseline{Partition: p, Saved: at, State: z})
			}
		}
		if err != nil {
			bs.det.MarkDirty(parts[i:]...)
			errs = append(errs, fmt.Errorf("cannot save the baseline of partition %d: %w", p, err))
			break
		}
	}
	return errors.Join(errs...)
}

func gzipBytes(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// gunzip decompresses a checkpoint, at most store.MaxBaselineState×8 bytes.
func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("cannot decompress baseline checkpoint: %w", err)
	}
	const limit = 8 * store.MaxBaselineState
	out, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, fmt.Errorf("cannot decompress baseline checkpoint: %w", err)
	}
	if len(out) > limit {
		return nil, fmt.Errorf("cannot decompress baseline checkpoint: more than %d bytes", limit)
	}
	return out, nil
}

// NormalRequest is the body of POST /api/v1/baseline/normal.
type normalRequest struct {
	AlertID string `json:"alert_id"`
	// Cohort also marks the alert's values normal for the device's cohort.
	Cohort bool `json:"cohort"`
}

// resetRequest is the body of POST /api/v1/baseline/reset.
type resetRequest struct {
	Name string        `json:"name"`
	Kind baseline.Kind `json:"kind"` // device or cohort; empty when the name is only one
}

// baselineRoutes are the learned baseline's API:
//
//	GET  /api/v1/baseline/{name...}  (read)   a device or cohort (baseline.View)
//	POST /api/v1/baseline/normal     (write)  {"alert_id": ID, "cohort": false}: this is normal
//	POST /api/v1/baseline/reset      (admin)  {"name": NAME, "kind": "device"|"cohort"}
//
// The two writes are audited (baseline.normal, baseline.reset) and saved
// to the store at once.
func (a *Node) baselineRoutes() []web.Route {
	bs := a.baseline
	if bs == nil {
		return nil
	}
	p := api.Prefix + "/baseline"
	return []web.Route{
		{Method: "GET", Pattern: p + "/{name...}", Perm: auth.PermRead, Handler: bs.handle(bs.show)},
		{Method: "POST", Pattern: p + "/normal", Perm: auth.PermWrite, Handler: bs.handle(bs.normal), Action: "baseline.normal"},
		{Method: "POST", Pattern: p + "/reset", Perm: auth.PermAdmin, Handler: bs.handle(bs.reset), Action: "baseline.reset"},
	}
}

func (bs *baselineState) handle(f func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return web.ErrorHandler(bs.log)(f)
}

func writeJSONAnswer(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	return json.NewEncoder(w).Encode(v)
}

// decodeBody decodes a small JSON body strictly.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return vigil.Errorf(vigil.EINVALID, "cannot decode body: %v", vigil.JSONErrorAt(err))
	}
	return nil
}

func (bs *baselineState) show(w http.ResponseWriter, r *http.Request) error {
	v, err := bs.det.Show(r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSONAnswer(w, v)
}

func (bs *baselineState) normal(w http.ResponseWriter, r *http.Request) error {
	var req normalRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if req.AlertID == "" {
		return vigil.Errorf(vigil.EINVALID, "alert_id is required")
	}
	web.Audit(r, "alert:"+req.AlertID, fmt.Sprintf("cohort=%v", req.Cohort))
	fb, err := bs.markNormal(r.Context(), req.AlertID, req.Cohort)
	if err != nil {
		return err
	}
	web.Audit(r, "alert:"+req.AlertID, fb.String())
	return writeJSONAnswer(w, fb)
}

// markNormal folds a stored alert into the baseline and saves the
// partitions it changed.
func (bs *baselineState) markNormal(ctx context.Context, alertID string, cohort bool) (baseline.Feedback, error) {
	al, err := bs.alert.GetAlert(ctx, alertID)
	if err != nil {
		return baseline.Feedback{}, err
	}
	fb, err := bs.det.MarkNormal(al, cohort)
	if err != nil {
		return fb, err
	}
	if err := bs.saveParts(ctx, fb.Partitions); err != nil {
		bs.log.Error("feedback applied but not saved yet: saved at the next checkpoint", "alert", alertID, "err", err)
	}
	bs.log.Info("alert marked normal", "alert", alertID, "feedback", fb.String())
	return fb, nil
}

func (bs *baselineState) reset(w http.ResponseWriter, r *http.Request) error {
	var req resetRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if req.Name == "" {
		return vigil.Errorf(vigil.EINVALID, "name is required")
	}
	web.Audit(r, "baseline:"+req.Name, "kind="+string(req.Kind))
	parts, err := bs.det.Reset(req.Name, req.Kind)
	if err != nil {
		return err
	}
	if err := bs.saveParts(r.Context(), parts); err != nil {
		bs.log.Error("reset applied but not saved yet: saved at the next checkpoint", "name", req.Name, "err", err)
	}
	bs.log.Info("baseline reset", "name", req.Name, "kind", req.Kind, "partitions", parts)
	return writeJSONAnswer(w, map[string]any{"name": req.Name, "partitions": parts})
}

// falsePositive lists the baseline alerts of an incident closed as a false
// positive, and with learn marks each normal for its device, each one
// audited as baseline.normal by actor.
func (bs *baselineState) falsePositive(ctx context.Context, inc vigil.Incident, learn bool, actor string, rec *audit.Recorder) *baseline.FalsePositive {
	fp := &baseline.FalsePositive{Alerts: []baseline.Candidate{}}
	for _, id := range inc.AlertIDs {
		al, err := bs.alert.GetAlert(ctx, id)
		if err != nil || !baseline.IsBaselineAlert(al) {
			continue
		}
		fp.Alerts = append(fp.Alerts, baseline.CandidateOf(al))
		if !learn {
			continue
		}
		fb, err := bs.markNormal(ctx, id, false)
		if err != nil {
			fp.Errors = append(fp.Errors, fmt.Sprintf("alert %s: %v", id, err))
			continue
		}
		fp.Learned = append(fp.Learned, fb)
		if _, err := rec.RecordJSON(ctx, actor, "baseline.normal", "alert:"+id, map[string]any{"incident": inc.ID, "feedback": fb.String()}); err != nil {
			bs.log.Error("cannot audit baseline feedback", "alert", id, "err", err)
		}
	}
	if len(fp.Alerts) > 0 && !learn {
		fp.How = "mark one normal with: vigil ctl alerts normal ALERT_ID [--cohort] (POST /api/v1/baseline/normal {\"alert_id\": ...})"
	}
	return fp
}

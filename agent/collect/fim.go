package collect

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/vigil-iot/vigil/wire"
)

// FIM watches files for change by their sha256. Each path is a file, or a
// directory whose regular files (not recursively) are watched. It emits a
// file event per change: action "created", "changed" or "deleted", with
// file.path and file.hash.sha256 (after) and file.hash.sha256_before. The
// baseline is kept in StateFile, so changes made while the agent was down
// are reported after its restart; the first run without a state file
// reports nothing.
type FIM struct {
	Env   Env
	Paths []string
	// StateFile keeps the hashes between runs ("" keeps them in memory).
	StateFile string
	// MaxFileBytes skips larger files (default 64 MiB).
	MaxFileBytes int64

	base   map[string]string
	loaded bool
}

// Name returns "fim".
func (f *FIM) Name() string { return "fim" }

// Collect hashes the paths and reports the differences.
func (f *FIM) Collect(_ context.Context, r *wire.Report) error {
	if !f.loaded {
		f.loaded = true
		if f.StateFile != "" {
			if b, err := os.ReadFile(f.StateFile); err == nil {
				_ = json.Unmarshal(b, &f.base)
			}
		}
	}
	cur := map[string]string{}
	var errs []error
	for _, p := range f.Paths {
		if err := f.scan(f.Env.path(p), cur); err != nil {
			errs = append(errs, err)
		}
	}
	if f.base != nil {
		now := f.Env.now()
		var names []string
		for k := range cur {
			names = append(names, k)
		}
		for k := range f.base {
			if _, ok := cur[k]; !ok {
				names = append(names, k)
			}
		}
		sort.Strings(names)
		for _, k := range names {
			before, after := f.base[k], cur[k]
			if before == after {
				continue
			}
			action := "changed"
			switch {
			case before == "":
				action = "created"
			case after == "":
				action = "deleted"
			}
			fl := wire.Fields{"file.path": k}
			if after != "" {
				fl["file.hash.sha256"] = after
			}
			if before != "" {
				fl["file.hash.sha256_before"] = before
			}
			r.Events = append(r.Events, newEvent(now, KindFile, "file", action, "success", "medium", fl))
		}
	}
	f.base = cur
	if f.StateFile != "" {
		if b, err := json.Marshal(cur); err == nil {
			tmp := f.StateFile + ".tmp"
			if err := os.WriteFile(tmp, b, 0o600); err == nil {
				_ = os.Rename(tmp, f.StateFile)
			}
		}
	}
	return errors.Join(errs...)
}

func (f *FIM) scan(p string, into map[string]string) error {
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // a deletion, if it was there
	}
	if err != nil {
		return fmt.Errorf("cannot check %s: %w", p, err)
	}
	if !fi.IsDir() {
		h, err := f.hash(p, fi)
		if err != nil {
			return err
		}
		into[p] = h
		return nil
	}
	ents, err := os.ReadDir(p)
	if err != nil {
		return fmt.Errorf("cannot check %s: %w", p, err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		fp := filepath.Join(p, e.Name())
		fi, err := e.Info()
		if err != nil {
			continue
		}
		h, err := f.hash(fp, fi)
		if err != nil {
			continue
		}
		into[fp] = h
	}
	return nil
}

func (f *FIM) hash(p string, fi fs.FileInfo) (string, error) {
	limit := f.MaxFileBytes
	if limit <= 0 {
		limit = 64 << 20
	}
	if fi.Size() > limit {
		return "", fmt.Errorf("cannot hash %s: %d bytes, over the limit of %d", p, fi.Size(), limit)
	}
	fh, err := os.Open(p)
	if err != nil {
		return "", fmt.Errorf("cannot hash %s: %w", p, err)
	}
	defer fh.Close()
	h := sha256.New()
	if _, err := io.Copy(h, fh); err != nil {
		return "", fmt.Errorf("cannot hash %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

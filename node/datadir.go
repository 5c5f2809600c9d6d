package node

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// secureDataDir makes the data dir readable by its owner only: it creates
// dir with mode 0700 when missing; when it exists, it takes the group and
// other permissions off dir and everything in it (an older Vigil, or a
// directory made by hand, left vigil.db 0644 in a 0755 dir: any local
// user could read the audit table). Symbolic links are left alone. It
// refuses, saying what, when a mode cannot be fixed.
func secureDataDir(dir string, log *slog.Logger) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("cannot create data dir: %w", err)
		}
		fi, err = os.Stat(dir)
	}
	if err != nil {
		return fmt.Errorf("cannot use data dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("cannot use data dir %s: it is not a directory", dir)
	}
	fixed := 0
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed meanwhile
		}
		if err != nil {
			return err
		}
		mode := info.Mode().Perm()
		if p == dir {
			mode = fi.Mode().Perm() // dir may be a symlink to the real one
		}
		if mode&0o077 == 0 {
			return nil
		}
		if err := os.Chmod(p, mode&^0o077); err != nil {
			return fmt.Errorf("%s is mode %04o (readable by others) and cannot be made %04o: %w", p, mode, mode&^0o077, err)
		}
		fixed++
		return nil
	})
	if err != nil {
		return fmt.Errorf("cannot secure data dir %s: %w", dir, err)
	}
	if fixed > 0 {
		log.Warn("data dir was readable by other users: group and other permissions removed", "data_dir", dir, "paths", fixed)
	}
	return nil
}

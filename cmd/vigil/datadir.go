package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"
)

// createsDataDir is the annotation of a command that makes its data dir
// (vigil serve): every other command refuses a data dir that does not
// exist rather than create one as a side effect.
const createsDataDir = "vigil.creates-data-dir"

// checkDataDirFlags is the root command's hook: a --data-dir or --data
// given to a command that does not make its data dir must name an
// existing directory. Without it, a typo or the default ./vigil-data made
// an empty data dir that the server never reads, and a token written
// there was never accepted.
func checkDataDirFlags(cmd *cobra.Command, args []string) error {
	if cmd.Annotations[createsDataDir] != "" {
		return nil
	}
	for _, name := range []string{"data-dir", "data"} {
		f := cmd.Flags().Lookup(name)
		if f == nil || f.Value.String() == "" {
			continue
		}
		if err := existingDataDir(f.Value.String()); err != nil {
			if !f.Changed {
				return fmt.Errorf("%w; give the server's data dir with --%s", err, name)
			}
			return fmt.Errorf("--%s: %w", name, err)
		}
	}
	return nil
}

// existingDataDir returns nil when dir is an existing directory.
func existingDataDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot use data dir %s: it does not exist (vigil serve makes it on its first start)", dir)
	}
	if err != nil {
		return fmt.Errorf("cannot use data dir %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("cannot use data dir %s: not a directory", dir)
	}
	return nil
}

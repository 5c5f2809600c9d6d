package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

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

// AdminTokenFile is the file, in the data dir, where vigil serve writes the
// bootstrap admin token on first start (mode 0600).
const AdminTokenFile = "admin-token"

// announceBootstrapToken gives the operator the bootstrap admin token of a
// first start: on out (stdout) and in AdminTokenFile (0600), never in the
// log. It returns the file's path, or why the file could not be written
// (the token was printed all the same).
func announceBootstrapToken(out io.Writer, dataDir, token string) (string, error) {
	path := filepath.Join(dataDir, AdminTokenFile)
	ferr := writeSecretFile(path, token+"\n")
	where := "also in " + path + ", mode 0600; keep it, then delete the file"
	if ferr != nil {
		where = "shown once, keep it"
	}
	fmt.Fprintf(out, "\nFirst start: the admin API token (%s):\n\n  %s\n\nCA certificate for clients: %s\n\n",
		where, token, filepath.Join(dataDir, "pki", "ca.crt"))
	return path, ferr
}

// writeSecretFile writes data to path, mode 0600, through a temporary
// file renamed over it.
func writeSecretFile(path, data string) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*") // 0600
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	_, err = f.WriteString(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}

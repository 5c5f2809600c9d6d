package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/vigil-iot/vigil/audit"
	"github.com/vigil-iot/vigil/store/sqlite"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Work on the hash-chained audit trail",
	}
	cmd.AddCommand(auditVerifyCmd())
	return cmd
}

func auditVerifyCmd() *cobra.Command {
	dataDir := defaultConfig().DataDir
	var output string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Verify the audit trail of a data dir; exit 1 and name the first bad record when broken",
		Long: `Verify the audit trail offline, on the SQLite database of a data dir (the server may
be running). Every record's hash is recomputed and its link to the previous one checked; the
first record that does not hold is named with its sequence number and what is wrong with it.
Write down the last seq and hash printed to detect a truncated tail later.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("-o %q: want table or json", output)
			}
			db := filepath.Join(dataDir, "vigil.db")
			if _, err := os.Stat(db); err != nil {
				return fmt.Errorf("cannot open the database of data dir %s: %w", dataDir, err)
			}
			st, err := sqlite.Open(db, sqlite.Options{})
			if err != nil {
				return err
			}
			defer st.Close()
			rep, err := audit.Verify(cmd.Context(), st)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				fmt.Fprintln(out, rep.String())
			}
			if !rep.OK {
				return exitCode(1)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", dataDir, "data directory of the server")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/vigil-iot/vigil/audit"
	"github.com/vigil-iot/vigil/node"
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
	var (
		o                  ctlOptions
		dataDir, anchors   string
		configFile, output string
	)
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Verify the audit trail (on the server, or offline with --data-dir); exit 1 and name the first bad record when it does not hold",
		Long: `Verify the audit trail: every record's hash is recomputed and its link to the previous
one checked, every record since the audit key exists must carry the key's MAC (a trail
rewritten without the key does not), and the trail must still hold the record the last
anchor names (a trail whose newest records were deleted does not). The first record that
does not hold is named with its sequence number and what is wrong with it.

By default the running server verifies its own trail (GET /api/v1/audit/verify, admin token;
--server/--token/--ca or VIGIL_SERVER/VIGIL_TOKEN/VIGIL_CA, as vigil ctl), with its key and its
last anchor. With --data-dir, the SQLite database of a data dir is read directly on this host
(the server may be running), with the key in DIR/pki/audit.key when readable, and the last
anchor of --anchors FILE (an anchor file, a JSON log of vigil serve, or syslog lines), or of
the audit.anchors.file of --config.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("-o %q: want table or json", output)
			}
			var (
				rep audit.Report
				err error
			)
			if dataDir == "" && configFile == "" {
				c, cerr := o.client()
				if cerr != nil {
					return fmt.Errorf("%w (or verify offline with --data-dir)", cerr)
				}
				if rep, err = c.VerifyAudit(cmd.Context()); err != nil {
					return err
				}
			} else if rep, err = verifyOffline(cmd, dataDir, configFile, anchors); err != nil {
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
	o.addConnFlags(cmd)
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "verify offline, on the database of this data dir")
	cmd.Flags().StringVar(&configFile, "config", "", "verify offline, with the data_dir and audit.anchors.file of this config")
	cmd.Flags().StringVar(&anchors, "anchors", "", "with --data-dir: the file holding the exported anchors")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

// verifyOffline verifies the trail of a data dir read directly.
func verifyOffline(cmd *cobra.Command, dataDir, configFile, anchors string) (audit.Report, error) {
	if configFile != "" {
		cfg := node.DefaultConfig()
		if err := node.LoadConfig(configFile, &cfg); err != nil {
			return audit.Report{}, err
		}
		if dataDir == "" {
			dataDir = cfg.DataDir
		}
		if anchors == "" {
			anchors = cfg.Audit.Anchors.File
		}
	}
	db := filepath.Join(dataDir, "vigil.db")
	if _, err := os.Stat(db); err != nil {
		return audit.Report{}, fmt.Errorf("cannot open the database of data dir %s: %w", dataDir, err)
	}
	var o audit.VerifyOptions
	key, err := audit.LoadKey(filepath.Join(dataDir, "pki", audit.KeyFile))
	switch {
	case err == nil:
		o.Key = key
	case errors.Is(err, fs.ErrNotExist):
		fmt.Fprintln(cmd.ErrOrStderr(), "warning: the data dir has no audit key: MACs are not checked")
	default:
		return audit.Report{}, err
	}
	if anchors != "" {
		a, ok, err := audit.ReadAnchorFile(anchors)
		if err != nil {
			return audit.Report{}, err
		}
		if !ok {
			return audit.Report{}, fmt.Errorf("cannot check truncation: %s holds no anchor", anchors)
		}
		o.Anchor = &a
	}
	st, err := sqlite.Open(db, sqlite.Options{})
	if err != nil {
		return audit.Report{}, err
	}
	defer st.Close()
	return audit.VerifyWith(cmd.Context(), st, o)
}

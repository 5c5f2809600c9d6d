package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/enroll"
)

// ctlEnrollTokenCmd makes one-time enrollment tokens for devices. It works
// on the server's data dir (on the server host; the running server sees
// the token at once).
func ctlEnrollTokenCmd(o *ctlOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "enroll-token", Short: "Create one-time enrollment tokens for device agents"}
	var class, dataDir string
	var ttl time.Duration
	create := &cobra.Command{
		Use:   "create --class CLASS [--ttl 1h] --data-dir DIR",
		Short: "Create a single-use enrollment token for a device of a class (printed once)",
		Long: `Create a single-use enrollment token. On the device:
  vigil-agent enroll --server https://vigil:8443 --token <token> --ca ca.crt
The agent makes its key, sends a CSR and receives its client certificate.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			files, err := enroll.OpenDir(filepath.Join(dataDir, "enroll"), vigil.SystemClock{})
			if err != nil {
				return err
			}
			plain, tok, err := files.Tokens.Create(class, ttl)
			if err != nil {
				return err
			}
			if o.output == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{"token": plain, "id": tok.ID, "class": tok.Class, "expires": tok.Expires})
			}
			fmt.Fprintln(cmd.OutOrStdout(), plain)
			return nil
		},
	}
	create.Flags().StringVar(&class, "class", "", "device class (camera, thermostat, plc-gateway, smart-meter, gateway, ...)")
	create.Flags().DurationVar(&ttl, "ttl", time.Hour, "how long the token can be used")
	create.Flags().StringVar(&dataDir, "data-dir", "vigil-data", "the server's data dir")
	create.MarkFlagRequired("class")
	cmd.AddCommand(create)
	return cmd
}

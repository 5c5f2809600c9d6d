package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/enroll"
)

// ctlEnrollTokenCmd makes one-time enrollment tokens for devices: through
// the configured server's API (an admin token), or with --data-dir in the
// server's data dir on the server host (the running server sees the token
// at once).
func ctlEnrollTokenCmd(o *ctlOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "enroll-token", Short: "Create one-time enrollment tokens for device agents"}
	var class, dataDir string
	var ttl time.Duration
	create := &cobra.Command{
		Use:   "create --class CLASS [--ttl 1h] [--data-dir DIR]",
		Short: "Create a single-use enrollment token for a device of a class (printed once)",
		Long: `Create a single-use enrollment token. It asks the server of --server (or $VIGIL_SERVER)
with an admin --token (or $VIGIL_TOKEN); with --data-dir it writes the token into the server's
data dir directly instead (on the server host). On the device:
  vigil-agent enroll --server https://vigil:8443 --token <token> --ca ca.crt
The agent makes its key, sends a CSR and receives its client certificate.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var ans enroll.TokenAnswer
			if dataDir != "" {
				dir := filepath.Join(dataDir, "enroll")
				if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("cannot use data dir %s: it holds no enroll/ directory; is it the server's data dir?", dataDir)
				}
				files, err := enroll.OpenDir(dir, vigil.SystemClock{})
				if err != nil {
					return err
				}
				plain, tok, err := files.Tokens.Create(class, ttl)
				if err != nil {
					return err
				}
				ans = enroll.TokenAnswer{Token: plain, ID: tok.ID, Class: tok.Class, Expires: tok.Expires}
			} else {
				c, err := o.client()
				if err != nil {
					return fmt.Errorf("cannot create an enrollment token: %w (an admin token of the server at %s), or give --data-dir on the server host", err, o.server)
				}
				defer c.Close()
				if ans, err = c.CreateEnrollToken(cmd.Context(), class, ttl); err != nil {
					return fmt.Errorf("cannot create an enrollment token on %s: %w", o.server, err)
				}
			}
			if o.output == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{"token": ans.Token, "id": ans.ID, "class": ans.Class, "expires": ans.Expires})
			}
			fmt.Fprintln(cmd.OutOrStdout(), ans.Token)
			return nil
		},
	}
	create.Flags().StringVar(&class, "class", "", "device class (camera, thermostat, plc-gateway, smart-meter, gateway, sensor, ...)")
	create.Flags().DurationVar(&ttl, "ttl", time.Hour, "how long the token can be used")
	create.Flags().StringVar(&dataDir, "data-dir", "", "write into the server's data dir directly (on the server host) instead of asking its API")
	create.MarkFlagRequired("class")
	cmd.AddCommand(create)
	return cmd
}

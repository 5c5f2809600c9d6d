package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/store"
)

// newUpdateCmd is `vigil update artifact add|list|remove` and `vigil
// update key`, on a running server.
func newUpdateCmd() *cobra.Command {
	o := &ctlOptions{}
	cmd := &cobra.Command{Use: "update", Short: "Update artifacts (packages, firmware images) signed with the server's update key"}
	o.addFlags(cmd)
	art := &cobra.Command{Use: "artifact", Short: "Add, list and remove update artifacts"}
	var m client.ArtifactMeta
	add := &cobra.Command{
		Use:   "add FILE --product P --version V [--class C]... [--model M]...",
		Short: "Upload an artifact: the server keeps it with its SHA-256 and signs it with the update key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fi, err := os.Stat(args[0])
			if err != nil {
				return fmt.Errorf("cannot read %s: %w", args[0], err)
			}
			if fi.Size() > store.MaxArtifactSize {
				return fmt.Errorf("cannot add %s: %d bytes, over the %d bytes an artifact may have", args[0], fi.Size(), store.MaxArtifactSize)
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("cannot read %s: %w", args[0], err)
			}
			c, err := o.client()
			if err != nil {
				return err
			}
			m.Name = filepath.Base(args[0])
			a, err := c.AddArtifact(cmd.Context(), m, data)
			if err != nil {
				return err
			}
			return o.printOne(cmd.OutOrStdout(), a, nil)
		},
	}
	add.Flags().StringVar(&m.Product, "product", "", "product the artifact updates (required)")
	add.Flags().StringVar(&m.Version, "version", "", "version it installs (required)")
	add.Flags().StringArrayVar(&m.Classes, "class", nil, "device class it is for (repeatable; none: any)")
	add.Flags().StringArrayVar(&m.Models, "model", nil, "device model it is for (repeatable; none: any)")
	add.MarkFlagRequired("product")
	add.MarkFlagRequired("version")
	var product string
	list := &cobra.Command{
		Use: "list", Short: "List artifacts", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			as, err := c.ListArtifacts(cmd.Context(), product)
			if err != nil {
				return err
			}
			return o.print(cmd.OutOrStdout(), as, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "ID\tPRODUCT\tVERSION\tCLASSES\tMODELS\tSIZE\tSHA256\tCREATED")
				for _, a := range as {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", a.ID, a.Product, a.Version, orAny(a.Classes), orAny(a.Models),
						a.Size, a.SHA256[:min(16, len(a.SHA256))], a.Created.Format(time.DateTime))
				}
			})
		},
	}
	list.Flags().StringVar(&product, "product", "", "only this product's artifacts")
	remove := &cobra.Command{
		Use: "remove ID", Short: "Remove an artifact", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			return c.RemoveArtifact(cmd.Context(), args[0])
		},
	}
	key := &cobra.Command{
		Use: "key", Short: "Print the public update key (base64 Ed25519) agents verify artifacts with", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			k, err := c.UpdateKey(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), k)
			return nil
		},
	}
	art.AddCommand(add, list, remove)
	cmd.AddCommand(art, key, newUpdatePlanCmd(o), newUpdateRepoCmd(o))
	return cmd
}

func orAny(s []string) string {
	if len(s) == 0 {
		return "any"
	}
	return strings.Join(s, ",")
}

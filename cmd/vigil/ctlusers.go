package main

import (
	"bufio"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/console"
)

// ctlUsersCmd manages the web console's user accounts through the API.
func ctlUsersCmd(o *ctlOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Manage the web console's user accounts (admin)",
		Long: `People log in to the web console with an API token or a user account. A user has a
role of the API's (admin, analyst, viewer) and a password, hashed with argon2id on the server.`,
	}
	var role string
	add := &cobra.Command{
		Use:     "add NAME",
		Short:   "Create a user, or set an existing user's role and password; the password is read from stdin",
		Example: `  printf '%s\n' "$PASSWORD" | vigil ctl users add alice --role analyst`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sc := bufio.NewScanner(cmd.InOrStdin())
			if !sc.Scan() {
				return fmt.Errorf("cannot read the password: give it on stdin, one line")
			}
			pw := strings.TrimRight(sc.Text(), "\r")
			c, err := o.client()
			if err != nil {
				return err
			}
			u, err := c.PutUser(cmd.Context(), console.UserRequest{Name: args[0], Role: auth.Role(role), Password: pw})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "user %s saved with role %s\n", u.Name, u.Role)
			return nil
		},
	}
	add.Flags().StringVar(&role, "role", "viewer", "admin, analyst or viewer")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			us, err := c.ListUsers(cmd.Context())
			if err != nil {
				return err
			}
			return o.print(cmd.OutOrStdout(), us, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "NAME\tROLE\tCREATED\tUPDATED")
				for _, u := range us {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", u.Name, u.Role, ago(u.Created), ago(u.Updated))
				}
			})
		},
	}
	del := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a user; its console sessions end at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			if err := c.DeleteUser(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(add, list, del)
	return cmd
}

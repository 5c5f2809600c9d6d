package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vigil-iot/vigil/node"
	"github.com/vigil-iot/vigil/respond/playbook"
)

func newPlaybooksCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "playbooks",
		Short: "Check and list response playbooks",
		Long: `Check and list response playbooks (docs/response.md). Without a directory, the
playbooks built into vigil are used (those the server runs when playbooks_dir is not set).`,
	}
	cmd.AddCommand(playbooksCheckCmd(), playbooksListCmd())
	return cmd
}

// loadPlaybookDir loads dir, or the built-in playbooks when dir is "".
func loadPlaybookDir(dir string) ([]*playbook.Playbook, []error) {
	if dir == "" {
		return node.BuiltinPlaybooks()
	}
	return playbook.Load(dir)
}

// flatten unwraps joined errors into their parts.
func flatten(errs []error) []error {
	var out []error
	for _, e := range errs {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			out = append(out, flatten(j.Unwrap())...)
			continue
		}
		out = append(out, e)
	}
	return out
}

func playbooksCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check [DIR]",
		Short: "Validate playbooks: one file:line: message per problem, exit 1 when any",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := ""
			if len(args) == 1 {
				dir = args[0]
			}
			pbs, errs := loadPlaybookDir(dir)
			errs = flatten(errs)
			out := cmd.OutOrStdout()
			for _, e := range errs {
				fmt.Fprintln(out, e)
			}
			fmt.Fprintf(out, "playbooks: valid=%d problems=%d\n", len(pbs), len(errs))
			if len(errs) > 0 {
				return exitCode(1)
			}
			return nil
		},
	}
}

func playbooksListCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list [DIR]",
		Short: "List the valid playbooks (problems go to stderr, exit 1 when any)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := ""
			if len(args) == 1 {
				dir = args[0]
			}
			pbs, errs := loadPlaybookDir(dir)
			sums := playbook.Summarize(pbs)
			out := cmd.OutOrStdout()
			switch output {
			case "json":
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(sums); err != nil {
					return err
				}
			case "table":
				tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tENABLED\tDRY RUN\tTRIGGER\tSTEPS\tAPPROVAL\tFILE")
				for _, s := range sums {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, yesNo(s.Enabled), yesNo(s.DryRun), s.Trigger,
						strings.Join(s.Steps, ","), s.Approval, s.File)
				}
				tw.Flush()
			default:
				return fmt.Errorf("-o %q: want table or json", output)
			}
			if errs = flatten(errs); len(errs) > 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), errors.Join(errs...))
				return exitCode(1)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table or json")
	return cmd
}

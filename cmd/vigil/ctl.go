package main

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/client"
	"github.com/vigil-iot/vigil/store"
	"github.com/vigil-iot/vigil/web/api"
)

// ctlOptions are the connection and output flags every ctl command shares.
type ctlOptions struct {
	server, token, caFile, output string
	limit                         int
}

func newCtlCmd() *cobra.Command {
	o := &ctlOptions{}
	cmd := &cobra.Command{
		Use:   "ctl",
		Short: "Query and manage a running Vigil server",
		Long: `Query and manage a running Vigil server through its REST API. The server, token and CA
come from --server, --token, --ca or the environment (VIGIL_SERVER, VIGIL_TOKEN, VIGIL_CA).
Output is a table, or JSON with -o json.`,
	}
	o.addFlags(cmd)
	cmd.AddCommand(ctlDevicesCmd(o), ctlAlertsCmd(o), withInvestigation(o, ctlIncidentsCmd(o)), ctlEventsCmd(o), ctlTokenCmd(o), ctlEnrollTokenCmd(o), findingsCmd(o, "findings"))
	cmd.AddCommand(ctlActionsCmd(o))
	cmd.AddCommand(ctlExceptionsCmd(o))
	cmd.AddCommand(ctlUsersCmd(o))
	cmd.AddCommand(ctlGraphCmd(o), ctlCampaignsCmd(o))
	cmd.AddCommand(ctlHuntCmd(o), ctlRetrohuntCmd(o))
	return cmd
}

// addFlags adds the connection and output flags to cmd and its subcommands.
func (o *ctlOptions) addFlags(cmd *cobra.Command) {
	o.addConnFlags(cmd)
	pf := cmd.PersistentFlags()
	pf.StringVarP(&o.output, "output", "o", "table", "table or json")
	pf.IntVar(&o.limit, "limit", 100, "how many items at most")
}

// addConnFlags adds the flags that say which server to talk to and how.
func (o *ctlOptions) addConnFlags(cmd *cobra.Command) {
	o.output = "table"
	pf := cmd.PersistentFlags()
	pf.StringVar(&o.server, "server", envOr("VIGIL_SERVER", "https://127.0.0.1:8443"), "server URL ($VIGIL_SERVER)")
	// A secret is never a flag default: help would print it. The flag's
	// default is empty and $VIGIL_TOKEN fills the value behind it.
	pf.StringVar(&o.token, "token", "", "API token (default: $VIGIL_TOKEN)")
	o.token = os.Getenv("VIGIL_TOKEN")
	pf.StringVar(&o.caFile, "ca", os.Getenv("VIGIL_CA"), "CA certificate of the server ($VIGIL_CA)")
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func (o *ctlOptions) client() (*client.Client, error) {
	if o.token == "" {
		return nil, fmt.Errorf("no API token: give --token or set VIGIL_TOKEN")
	}
	if o.output != "table" && o.output != "json" {
		return nil, fmt.Errorf("-o %q: want table or json", o.output)
	}
	var pool *x509.CertPool
	if o.caFile != "" {
		var err error
		if pool, err = client.LoadCAFile(o.caFile); err != nil {
			return nil, err
		}
	}
	return client.New(o.server, o.token, client.TLSConfig(pool))
}

// print writes v as JSON, or calls table with a tab writer.
func (o *ctlOptions) print(w io.Writer, v any, table func(tw *tabwriter.Writer)) error {
	if o.output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// printOne writes one object: JSON, or every field (printDetail).
func (o *ctlOptions) printOne(w io.Writer, v any, lead [][2]string, skip ...string) error {
	return o.print(w, v, func(tw *tabwriter.Writer) { printDetail(tw, lead, v, skip...) })
}

func ctlDevicesCmd(o *ctlOptions) *cobra.Command {
	var q store.DeviceFilter
	cmd := &cobra.Command{
		Use:   "devices [ID]",
		Short: "List devices, or show one device with its recent health",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(args) == 1 {
				d, err := c.GetDevice(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return o.print(out, d, func(tw *tabwriter.Writer) {
					dev := d.Device
					fmt.Fprintf(tw, "ID\t%s\nCLASS\t%s\nVENDOR\t%s\nMODEL\t%s\nFIRMWARE\t%s\nOS\t%s %s\nSTATE\t%s\nLAST SEEN\t%s\nTAGS\t%s\n",
						dev.ID, dev.Class, dev.Vendor, dev.Model, dev.Firmware, dev.OS, dev.Kernel, dev.State, ago(dev.LastSeen), joinOr(dev.Tags, "-"))
					for _, s := range dev.Software {
						fmt.Fprintf(tw, "SOFTWARE\t%s %s\n", s.Name, s.Version)
					}
					fmt.Fprintln(tw, "\nTIME\tCPU%\tMEM%\tDISK%\tTEMP")
					for _, h := range d.HealthHistory {
						fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%.1f\n", h.Time.Format(time.DateTime), h.CPU, h.Memory, h.Disk, h.Temperature)
					}
				})
			}
			q.Limit = o.limit
			ds, next, err := c.ListDevices(cmd.Context(), q)
			if err != nil {
				return err
			}
			defer o.printMore(cmd, next)
			return o.print(out, ds, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "ID\tCLASS\tVENDOR\tMODEL\tFIRMWARE\tSTATE\tCPU%\tLAST SEEN")
				for _, d := range ds {
					cpu := "-"
					if d.Health != nil {
						cpu = fmt.Sprintf("%.1f", d.Health.CPU)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Class, d.Vendor, d.Model, d.Firmware, d.State, cpu, ago(d.LastSeen))
				}
			})
		},
	}
	cmd.Flags().StringVar(&q.Class, "class", "", "only this device class")
	cmd.Flags().StringVar((*string)(&q.State), "state", "", "only this state")
	cmd.Flags().StringVar(&q.Tag, "tag", "", "only devices with this tag")
	addCursorFlag(cmd, &q.Cursor)
	return cmd
}

func ctlAlertsCmd(o *ctlOptions) *cobra.Command {
	var (
		q   store.AlertFilter
		sev string
	)
	cmd := &cobra.Command{
		Use:   "alerts [ID]",
		Short: "List alerts, newest first, or show one in full",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			defer c.Close()
			if len(args) == 1 {
				a, err := c.GetAlert(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				// Why it fired follows the alert (-o json: its explanation).
				return o.print(cmd.OutOrStdout(), a, func(tw *tabwriter.Writer) { printAlertDetail(tw, a) })
			}
			q.Limit = o.limit
			if sev != "" {
				if q.MinSeverity, err = vigil.ParseSeverity(sev); err != nil {
					return err
				}
			}
			as, next, err := c.ListAlerts(cmd.Context(), q)
			if err != nil {
				return err
			}
			defer o.printMore(cmd, next)
			// The rule by its title; its id is in `ctl alerts ID` and -o json.
			return o.print(cmd.OutOrStdout(), as, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "ID\tPRIORITY\tSEVERITY\tDEVICE\tRULE\tATT&CK\tCOUNT\tINCIDENT\tCREATED")
				for _, a := range as {
					rule := a.Title
					if rule == "" {
						rule = a.RuleID
					}
					rule = retroMark(a) + rule
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", a.ID, priorityCell(a.Priority), a.Severity, dash(a.DeviceID), rule,
						joinOr(a.Techniques, "-"), a.Count, dash(a.IncidentID), ago(a.Created))
				}
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.DeviceID, "device", "", "only this device")
	f.StringVar(&q.RuleID, "rule", "", "only this rule")
	f.StringVar(&q.IncidentID, "incident", "", "only this incident")
	f.StringVar(&sev, "min-severity", "", "informational, low, medium, high or critical")
	f.StringVar(&q.Sort, "sort", "", "time (newest first, the default) or priority (highest first)")
	addCursorFlag(cmd, &q.Cursor)
	cmd.AddCommand(ctlAlertNormalCmd(o))
	return cmd
}

func ctlIncidentsCmd(o *ctlOptions) *cobra.Command {
	var (
		q      store.IncidentFilter
		status string
	)
	cmd := &cobra.Command{
		Use:   "incidents [ID]",
		Short: "List incidents, newest first, or show one in full with its alerts",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			defer c.Close()
			if len(args) == 1 {
				i, err := c.GetIncident(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if o.output == "json" {
					return o.print(cmd.OutOrStdout(), i, nil)
				}
				// Its alerts by their rules' titles rather than by id alone.
				as, _, err := c.ListAlerts(cmd.Context(), store.AlertFilter{IncidentID: i.ID, Page: store.Page{Limit: 1000}})
				if err != nil {
					return err
				}
				return o.print(cmd.OutOrStdout(), i, func(tw *tabwriter.Writer) {
					printDetail(tw, nil, i, "alert_ids", "priority")
					printPriority(tw, i.Priority)
					for _, a := range as {
						fmt.Fprintf(tw, "alert\t%s  %s  %s\n", a.ID, a.Severity, ruleName(a.Title, a.RuleID))
					}
					if len(as) < len(i.AlertIDs) {
						fmt.Fprintf(tw, "alert_ids\t%s\n", strings.Join(i.AlertIDs, ", "))
					}
				})
			}
			q.Status = vigil.IncidentStatus(status)
			q.Limit = o.limit
			is, next, err := c.ListIncidents(cmd.Context(), q)
			if err != nil {
				return err
			}
			defer o.printMore(cmd, next)
			return o.print(cmd.OutOrStdout(), is, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "ID\tPRIORITY\tSTATUS\tSEVERITY\tTITLE\tDEVICES\tALERTS\tATT&CK\tTIME TO DETECT\tDETECTED")
				for _, i := range is {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", i.ID, priorityCell(i.Priority), i.Status, i.Severity, i.Title,
						strings.Join(i.DeviceIDs, ","), len(i.AlertIDs), joinOr(i.Techniques, "-"),
						i.TimeToDetect, ago(i.Detected))
				}
			})
		},
	}
	cmd.Flags().StringVar(&status, "status", "", "open, contained, resolved or false_positive")
	cmd.Flags().StringVar(&q.DeviceID, "device", "", "only incidents on this device")
	cmd.Flags().StringVar(&q.Sort, "sort", "", "time (newest first) or priority (highest first; the default with --status open)")
	addCursorFlag(cmd, &q.Cursor)
	var (
		resolution string
		learn      bool
		reason     string
	)
	resolve := &cobra.Command{
		Use:   "resolve ID [--as resolved|false_positive [--learn]] [--reason TEXT]",
		Short: "Close an incident; false_positive also rolls back its containment (an isolated device is restored)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			inc, err := c.ResolveIncidentBecause(cmd.Context(), args[0], vigil.IncidentStatus(resolution), learn, reason)
			if err != nil {
				return err
			}
			return o.print(cmd.OutOrStdout(), inc, func(tw *tabwriter.Writer) {
				fmt.Fprintf(tw, "%s\t%s\n", inc.ID, inc.Status)
				printFalsePositive(tw, inc.Baseline)
				printSuggestions(tw, inc.Exceptions)
			})
		},
	}
	resolve.Flags().StringVar(&resolution, "as", "resolved", "resolved or false_positive")
	resolve.Flags().BoolVar(&learn, "learn", false, "with false_positive: mark the incident's learned-baseline alerts normal for their devices")
	resolve.Flags().StringVar(&reason, "reason", "", "why it is closed: kept with the incident, in its report and the audit trail")
	cmd.AddCommand(resolve)
	return cmd
}

func ctlEventsCmd(o *ctlOptions) *cobra.Command {
	var (
		q      store.EventFilter
		since  time.Duration
		fields []string
	)
	cmd := &cobra.Command{
		Use:   "events [ID]",
		Short: "List events, newest first, or show one in full",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			defer c.Close()
			if len(args) == 1 {
				e, err := c.GetEvent(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return o.printOne(cmd.OutOrStdout(), e, nil)
			}
			q.Limit = o.limit
			if since > 0 {
				q.Since = time.Now().Add(-since)
			}
			for _, f := range fields {
				k, v, ok := strings.Cut(f, "=")
				if !ok {
					return fmt.Errorf("--field %q: want name=value", f)
				}
				if q.Fields == nil {
					q.Fields = map[string]string{}
				}
				q.Fields[k] = v
			}
			es, next, err := c.ListEvents(cmd.Context(), q)
			if err != nil {
				return err
			}
			defer o.printMore(cmd, next)
			return o.print(cmd.OutOrStdout(), es, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "TIME\tDEVICE\tKIND\tACTION\tOUTCOME\tDETAIL")
				for _, e := range es {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Format(time.DateTime+".000"), e.DeviceID, printable(e.Kind), printable(e.Action), printable(e.Outcome), eventDetail(&e))
				}
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.DeviceID, "device", "", "only this device")
	f.StringVar(&q.Kind, "kind", "", "only this kind (auth, process, network, health, ...)")
	f.DurationVar(&since, "since", 0, "only events newer than this (e.g. 1h)")
	f.StringArrayVar(&fields, "field", nil, "field equality name=value (repeatable)")
	addCursorFlag(cmd, &q.Cursor)
	return cmd
}

// eventDetail picks the few fields that say most about an event.
func eventDetail(e *vigil.Event) string {
	var parts []string
	for _, k := range []string{"user.name", "source.ip", "process.command_line", "destination.port", "host.cpu.pct"} {
		if v, ok := e.FieldString(k); ok {
			parts = append(parts, k+"="+printable(v))
		}
	}
	return strings.Join(parts, " ")
}

func ctlTokenCmd(o *ctlOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke API tokens",
		Long: `Create, list and revoke API tokens through the API of the configured server (--server,
--token or VIGIL_SERVER, VIGIL_TOKEN; an admin token). On the server host, --data-dir works on
the tokens of the server's SQLite store (vigil.db) directly instead (the running server sees
the change at once; a server on PostgreSQL: use its API); the directory must be an existing
Vigil data dir: none is ever created.`,
	}
	var (
		role, name, dataDir string
		ttl                 time.Duration
		devices             []string
	)
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an API token with a role (printed once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := auth.ParseRole(role)
			if err != nil {
				return err
			}
			if ttl < 0 {
				return fmt.Errorf("--ttl %s: want a positive duration (or none: the token never expires)", ttl)
			}
			if name == "" {
				name = string(r) + "-" + time.Now().UTC().Format("20060102-150405")
			}
			var ct api.CreatedToken
			if dataDir != "" {
				ts, err := openTokenFile(dataDir)
				if err != nil {
					return err
				}
				defer ts.Close()
				if ct.Secret, ct.Token, err = ts.CreateWith(name, r, auth.CreateOptions{TTL: ttl, Devices: devices}); err != nil {
					return err
				}
			} else {
				c, err := o.client()
				if err != nil {
					return err
				}
				req := api.CreateTokenRequest{Name: name, Role: r, Devices: devices}
				if ttl > 0 {
					req.TTL = ttl.String()
				}
				if ct, err = c.CreateTokenWith(cmd.Context(), req); err != nil {
					return err
				}
			}
			if o.output == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(ct)
			}
			fmt.Fprintln(cmd.OutOrStdout(), ct.Secret)
			return nil
		},
	}
	create.Flags().StringVar(&role, "role", "viewer", "admin, analyst, viewer or agent")
	create.Flags().StringVar(&name, "name", "", "a name for the token")
	create.Flags().DurationVar(&ttl, "ttl", 0, "how long the token works (e.g. 720h); none: it never expires")
	create.Flags().StringArrayVar(&devices, "device", nil, "bind an agent token to this device id (repeatable): it may send data only for those")
	create.Flags().StringVar(&dataDir, "data-dir", "", "the server's data dir (write its store's tokens directly, on the server host)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List tokens (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var ts []auth.Token
			if dataDir != "" {
				fs, err := openTokenFile(dataDir)
				if err != nil {
					return err
				}
				defer fs.Close()
				if ts, err = fs.List(); err != nil {
					return err
				}
			} else {
				c, err := o.client()
				if err != nil {
					return err
				}
				if ts, err = c.ListTokens(cmd.Context()); err != nil {
					return err
				}
			}
			now := time.Now()
			return o.print(cmd.OutOrStdout(), ts, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "ID\tNAME\tROLE\tCREATED\tLAST USED\tEXPIRES\tDEVICES")
				for _, t := range ts {
					exp := "never"
					switch {
					case t.Expired(now):
						exp = "expired " + ago(t.Expires)
					case !t.Expires.IsZero():
						exp = "in " + t.Expires.Sub(now).Round(time.Second).String()
					}
					devs := "any"
					if len(t.Devices) > 0 {
						devs = strings.Join(t.Devices, ",")
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Role, ago(t.Created), ago(t.LastUsed), exp, devs)
				}
			})
		},
	}
	list.Flags().StringVar(&dataDir, "data-dir", "", "the server's data dir (read its store's tokens directly, on the server host)")
	revoke := &cobra.Command{
		Use:   "revoke ID|NAME",
		Short: "Revoke a token by id or name: it stops working at once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dataDir != "" {
				fs, err := openTokenFile(dataDir)
				if err != nil {
					return err
				}
				defer fs.Close()
				if err := fs.Revoke(args[0]); err != nil {
					return err
				}
			} else {
				c, err := o.client()
				if err != nil {
					return err
				}
				if err := c.RevokeToken(cmd.Context(), args[0]); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s\n", args[0])
			return nil
		},
	}
	revoke.Flags().StringVar(&dataDir, "data-dir", "", "the server's data dir (change its store's tokens directly, on the server host)")
	cmd.AddCommand(create, list, revoke)
	return cmd
}

// ago formats a time as an age ("3m12s ago"), or "-" for the zero time.
func ago(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

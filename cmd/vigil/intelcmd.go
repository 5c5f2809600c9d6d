package main

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/feeds"
	"github.com/vigil-iot/vigil/vuln/scan"
	"github.com/vigil-iot/vigil/web"
)

// isURL tells a source the server fetches from a local file to upload.
func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// readUpload returns a local file's content to upload, or "" for a URL.
func readUpload(src string) (string, error) {
	if isURL(src) {
		return "", nil
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return "", fmt.Errorf("cannot read %s: %w", src, err)
	}
	return string(b), nil
}

func newIntelCmd() *cobra.Command {
	o := &ctlOptions{}
	cmd := &cobra.Command{Use: "intel", Short: "Threat-intel feeds: import, list, remove (on a running server, or a data dir with --data)"}
	o.addFlags(cmd)
	var dataDir string
	cmd.PersistentFlags().StringVar(&dataDir, "data", "", "work on this data dir directly (no server running) instead of --server")
	var f feeds.Feed
	imp := &cobra.Command{
		Use:   "import --name NAME FILE|URL",
		Short: "Import a feed (STIX 2.x, MISP event or feed, TAXII 2.1, list, CSV); a file is uploaded, a URL fetched by the server",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.Source = args[0]
			var res feeds.Result
			if dataDir != "" {
				cat, st, err := openDataDirIntel(cmd.Context(), dataDir, nil)
				if err != nil {
					return err
				}
				defer st.Close()
				if res, err = cat.Import(cmd.Context(), f); err != nil {
					return err
				}
			} else {
				c, err := o.client()
				if err != nil {
					return err
				}
				content, err := readUpload(args[0])
				if err != nil {
					return err
				}
				if res, err = c.ImportIntel(cmd.Context(), web.IntelImport{Feed: f, Content: content}); err != nil {
					return err
				}
			}
			for _, e := range res.Errors {
				fmt.Fprintln(cmd.ErrOrStderr(), e)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "intel: imported=%d rejected=%d\n", res.Imported, res.Rejected)
			return nil
		},
	}
	imp.Flags().StringVar(&f.Name, "name", "", "feed name")
	imp.Flags().StringVar(&f.Format, "format", "", "stix, misp, misp-feed, taxii, list or csv (default: detect)")
	imp.Flags().IntVar(&f.Confidence, "confidence", 0, "confidence (0-100) of indicators that carry none")
	imp.Flags().DurationVar(&f.Expiry, "expiry", 0, "indicators without valid_until expire this long after import")
	imp.Flags().DurationVar(&f.Refresh, "refresh", 0, "re-import a URL this often")
	imp.Flags().StringVar(&f.Collection, "collection", "", "TAXII collection id or title")
	imp.Flags().StringVar(&f.Token, "feed-token", "", "bearer token of the feed URL")
	imp.MarkFlagRequired("name")
	list := &cobra.Command{
		Use: "list", Short: "List feeds", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			fs, err := c.ListIntel(cmd.Context())
			if err != nil {
				return err
			}
			return o.print(cmd.OutOrStdout(), fs, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "NAME\tFORMAT\tINDICATORS\tIMPORTED\tSOURCE")
				for _, f := range fs {
					fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", f.Feed.Name, f.Format, f.Count, f.Imported.Format(time.DateTime), f.Feed.Source)
				}
			})
		},
	}
	remove := &cobra.Command{
		Use: "remove NAME", Short: "Remove a feed and its indicators", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			return c.RemoveIntel(cmd.Context(), args[0])
		},
	}
	cmd.AddCommand(imp, list, remove)
	return cmd
}

func newVulnCmd() *cobra.Command {
	o := &ctlOptions{}
	cmd := &cobra.Command{Use: "vuln", Short: "Vulnerability sources and findings (on a running server, or a data dir with --data)"}
	o.addFlags(cmd)
	var dataDir string
	cmd.PersistentFlags().StringVar(&dataDir, "data", "", "import into this data dir directly (no server running) instead of --server")
	var in web.VulnImport
	imp := &cobra.Command{
		Use:   "import --name NAME FILE|URL",
		Short: "Import NVD CVE 2.0, OSV, CISA KEV, CSAF 2.0, VEX (CycloneDX, OpenVEX) or an SBOM (CycloneDX, SPDX)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var res feeds.Result
			if dataDir != "" {
				st, err := openDataDirStore(dataDir)
				if err != nil {
					return err
				}
				defer st.Close()
				db, err := scan.Open(scan.Config{Store: st, Dir: dataDir, Clock: vigil.SystemClock{}})
				if err != nil {
					return err
				}
				defer db.Flush()
				o := scan.ImportOptions{Name: in.Name, Format: in.Format, Vendor: in.Vendor, Model: in.Model, Firmware: in.Firmware, Refresh: in.Refresh}
				if res, err = db.Import(cmd.Context(), args[0], o); err != nil {
					return err
				}
			} else {
				c, err := o.client()
				if err != nil {
					return err
				}
				if in.Content, err = readUpload(args[0]); err != nil {
					return err
				}
				if in.Content == "" {
					in.Source = args[0]
				}
				if res, err = c.ImportVuln(cmd.Context(), in); err != nil {
					return err
				}
			}
			for _, e := range res.Errors {
				fmt.Fprintln(cmd.ErrOrStderr(), e)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "vuln: imported=%d rejected=%d\n", res.Imported, res.Rejected)
			return nil
		},
	}
	imp.Flags().StringVar(&in.Name, "name", "", "source name")
	imp.Flags().StringVar(&in.Format, "format", "", "nvd, osv, kev, csaf, vex or sbom (default: detect)")
	imp.Flags().StringVar(&in.Vendor, "vendor", "", "SBOM: the devices' vendor")
	imp.Flags().StringVar(&in.Model, "model", "", "SBOM: the devices' model")
	imp.Flags().StringVar(&in.Firmware, "firmware", "", "SBOM: the devices' firmware version")
	imp.Flags().DurationVar(&in.Refresh, "refresh", 0, "re-import a URL this often")
	imp.MarkFlagRequired("name")
	sources := vulnSourcesCmd(o)
	cmd.AddCommand(imp, findingsCmd(o, "list"), sources)
	return cmd
}

// findingsCmd lists vulnerability findings (vigil vuln list, vigil ctl findings).
func findingsCmd(o *ctlOptions, use string) *cobra.Command {
	var f scan.Filter
	list := &cobra.Command{
		Use: use, Short: "List vulnerability findings, highest ranked first (exposed, KEV, CVSS)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			fs, err := c.ListFindings(cmd.Context(), f)
			if err != nil {
				return err
			}
			return o.print(cmd.OutOrStdout(), fs, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "DEVICE\tVULN\tCVSS\tKEV\tCOMPONENT\tVERSION\tFIXED\tCONFIDENCE")
				for _, x := range fs {
					fmt.Fprintf(tw, "%s\t%s\t%.1f\t%v\t%s\t%s\t%s\t%.2f\n", x.DeviceID, x.Vuln, x.CVSS, x.KEV, x.Component, x.ComponentVersion, x.FixedVersion, x.Confidence)
				}
			})
		},
	}
	list.Flags().StringVar(&f.DeviceID, "device", "", "only this device")
	list.Flags().BoolVar(&f.KEVOnly, "kev", false, "only known exploited vulnerabilities")
	list.Flags().Float64Var(&f.MinCVSS, "min-cvss", 0, "only findings with at least this CVSS score")
	return list
}

func vulnSourcesCmd(o *ctlOptions) *cobra.Command {
	return &cobra.Command{
		Use: "sources", Short: "List advisory, VEX and SBOM sources", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			ss, err := c.ListVulnSources(cmd.Context())
			if err != nil {
				return err
			}
			return o.print(cmd.OutOrStdout(), ss, func(tw *tabwriter.Writer) {
				fmt.Fprintln(tw, "NAME\tKIND\tFORMAT\tCOUNT\tIMPORTED\tORIGIN")
				for _, s := range ss {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", s.Name, s.Kind, s.Format, s.Count, s.Imported.Format(time.DateTime), s.Origin)
				}
			})
		},
	}
}

func newReportCmd() *cobra.Command {
	o := &ctlOptions{}
	cmd := &cobra.Command{Use: "report", Short: "Reports of a running server"}
	o.addFlags(cmd)
	var format string
	posture := &cobra.Command{
		Use:   "posture --format html|csv|json",
		Short: "The fleet's security posture: what is missing and how to fix it, incidents (MTTD, MTTC), response actions, devices by firmware, findings, KEV, exposure",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.client()
			if err != nil {
				return err
			}
			b, err := c.PostureReport(cmd.Context(), format)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
	posture.Flags().StringVar(&format, "format", "html", "html, csv or json")
	cmd.AddCommand(posture)
	return cmd
}

package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newServeCmd() *cobra.Command {
	cfg := defaultConfig()
	var file string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Vigil server: ingest API, bus, detection, alerts, incidents, store",
		Long: `Run the Vigil server on embedded defaults: NATS JetStream and SQLite under the
data dir, HTTPS with a certificate from Vigil's own CA (made on first start), and an admin
token printed once on first start. --nats-url points the same pipeline at an external NATS.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if file != "" {
				// Flags given explicitly win over the file.
				fileCfg := defaultConfig()
				if err := loadConfig(file, &fileCfg); err != nil {
					return err
				}
				overlayFlags(cmd, &fileCfg, &cfg)
				cfg = fileCfg
			}
			if err := cfg.validate(); err != nil {
				return fmt.Errorf("cannot use config: %w", err)
			}
			log := newLogger(cmd.ErrOrStderr(), cfg.LogLevel)
			// What the server creates is its owner's only (0700 dirs,
			// 0600 files: the store, JetStream, keys).
			defer setUmask(0o077)()
			a, err := openApp(cmd.Context(), cfg, log)
			if err != nil {
				return err
			}
			if err := a.start(cmd.Context()); err != nil {
				a.close()
				return err
			}
			log.Info("vigil serving", "url", a.URL, "data_dir", cfg.DataDir, "nats", natsMode(cfg))
			if a.adminToken != "" {
				// On stdout and in a 0600 file, never in the log.
				if path, err := announceBootstrapToken(cmd.OutOrStdout(), cfg.DataDir, a.adminToken); err != nil {
					log.Error("first start: the bootstrap admin token is on stdout only", "err", err)
				} else {
					log.Info("first start: the bootstrap admin token is on stdout and in a file readable by this user only", "file", path)
				}
			}
			return a.wait()
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "config", "c", "", "YAML config file")
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "data directory")
	f.StringVar(&cfg.Listen, "listen", cfg.Listen, "API listen address")
	f.BoolVar(&cfg.InsecureHTTP, "insecure-http", false, "serve plain HTTP (loopback addresses only)")
	f.StringVar(&cfg.NATSURL, "nats-url", "", "external NATS URL (default: embedded NATS under the data dir)")
	f.IntVar(&cfg.Partitions, "partitions", cfg.Partitions, "event partitions on the bus")
	f.StringSliceVar(&cfg.RulesDirs, "rules", nil, "extra threshold rule directories")
	f.StringSliceVar(&cfg.SigmaDirs, "sigma", nil, "Sigma rule directories")
	f.StringVar(&cfg.PlaybooksDir, "playbooks", "", "response playbook directory (default: the playbooks built into vigil)")
	f.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	return cmd
}

// overlayFlags copies the flags the user set explicitly from flagCfg onto c.
func overlayFlags(cmd *cobra.Command, c, flagCfg *config) {
	f := cmd.Flags()
	set := func(name string, apply func()) {
		if f.Changed(name) {
			apply()
		}
	}
	set("data-dir", func() { c.DataDir = flagCfg.DataDir })
	set("listen", func() { c.Listen = flagCfg.Listen })
	set("insecure-http", func() { c.InsecureHTTP = flagCfg.InsecureHTTP })
	set("nats-url", func() { c.NATSURL = flagCfg.NATSURL })
	set("partitions", func() { c.Partitions = flagCfg.Partitions })
	set("rules", func() { c.RulesDirs = flagCfg.RulesDirs })
	set("sigma", func() { c.SigmaDirs = flagCfg.SigmaDirs })
	set("playbooks", func() { c.PlaybooksDir = flagCfg.PlaybooksDir })
	set("log-level", func() { c.LogLevel = flagCfg.LogLevel })
}

func natsMode(c config) string {
	if c.NATSURL == "" {
		return "embedded"
	}
	return c.NATSURL
}

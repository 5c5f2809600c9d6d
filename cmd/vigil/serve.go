package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/vigil-iot/vigil/node"
)

func newServeCmd() *cobra.Command {
	cfg := node.DefaultConfig()
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
				fileCfg := node.DefaultConfig()
				if err := node.LoadConfig(file, &fileCfg); err != nil {
					return err
				}
				overlayFlags(cmd, &fileCfg, &cfg)
				cfg = fileCfg
			}
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("cannot use config: %w", err)
			}
			log := newLogger(cmd.ErrOrStderr(), cfg.LogLevel)
			// What the server creates is its owner's only (0700 dirs,
			// 0600 files: the store, JetStream, keys).
			defer setUmask(0o077)()
			ctx := cmd.Context()
			a, err := node.Open(ctx, cfg, log)
			if err != nil {
				return err
			}
			// The stages run until shutdown stops them one after the
			// other: SIGTERM only starts the shutdown.
			if err := a.Start(context.WithoutCancel(ctx)); err != nil {
				a.Close()
				return err
			}
			log.Info("vigil serving", "url", a.URL(), "data_dir", cfg.DataDir, "nats", natsMode(cfg), "store", cfg.Store.Describe(cfg.DataDir))
			if a.AdminToken() != "" {
				// On stdout and in a 0600 file, never in the log.
				if path, err := announceBootstrapToken(cmd.OutOrStdout(), cfg.DataDir, a.AdminToken()); err != nil {
					log.Error("first start: the bootstrap admin token is on stdout only", "err", err)
				} else {
					log.Info("first start: the bootstrap admin token is on stdout and in a file readable by this user only", "file", path)
				}
			}
			select {
			case <-a.Done(): // a stage failed: the others are stopping
				return a.Close()
			case <-ctx.Done():
			}
			// A second signal stops the process at once.
			signal.Reset(os.Interrupt, syscall.SIGTERM)
			return a.Shutdown()
		},
	}
	cmd.Annotations = map[string]string{createsDataDir: "yes"} // the only command that may
	f := cmd.Flags()
	f.StringVarP(&file, "config", "c", "", "YAML config file")
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "data directory")
	f.StringVar(&cfg.Listen, "listen", cfg.Listen, "API listen address")
	f.BoolVar(&cfg.InsecureHTTP, "insecure-http", false, "serve plain HTTP (loopback addresses only)")
	f.StringVar(&cfg.NATSURL, "nats-url", "", "external NATS URL (default: embedded NATS under the data dir)")
	f.IntVar(&cfg.Partitions, "partitions", cfg.Partitions, "event partitions on the bus")
	f.StringVar(&cfg.BusPrefix, "bus-prefix", "", "namespace of the bus's subjects and streams (default vigil)")
	f.StringVar(&cfg.Store.Driver, "store-driver", "", "sqlite (default, under the data dir) or postgres")
	f.StringVar(&cfg.Store.URL, "store-url", "", "PostgreSQL URL for the postgres driver (or a SQLite file path)")
	f.StringVar(&cfg.SecretsKeyFile, "secrets-key-file", "", "key file encrypting the keys shared through a postgres store (default $"+node.SecretsKeyEnv+")")
	f.StringSliceVar(&cfg.RulesDirs, "rules", nil, "extra threshold rule directories")
	f.StringSliceVar(&cfg.SigmaDirs, "sigma", nil, "Sigma rule directories")
	f.StringVar(&cfg.PlaybooksDir, "playbooks", "", "response playbook directory (default: the playbooks built into vigil)")
	f.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error")
	f.BoolVar(&cfg.Cluster.Enabled, "cluster", false, "share the stateful work with the other nodes on the same --nats-url (docs/scaling.md)")
	f.StringVar(&cfg.Cluster.Node, "node", "", "this node's name in the cluster (default host name and listen port)")
	f.StringVar(&cfg.Baseline.File, "baseline", "", "baseline file of vigil baseline learn to start from (partitions without a checkpoint)")
	return cmd
}

// overlayFlags copies the flags the user set explicitly from flagCfg onto c.
func overlayFlags(cmd *cobra.Command, c, flagCfg *node.Config) {
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
	set("bus-prefix", func() { c.BusPrefix = flagCfg.BusPrefix })
	set("store-driver", func() { c.Store.Driver = flagCfg.Store.Driver })
	set("store-url", func() { c.Store.URL = flagCfg.Store.URL })
	set("secrets-key-file", func() { c.SecretsKeyFile = flagCfg.SecretsKeyFile })
	set("rules", func() { c.RulesDirs = flagCfg.RulesDirs })
	set("sigma", func() { c.SigmaDirs = flagCfg.SigmaDirs })
	set("playbooks", func() { c.PlaybooksDir = flagCfg.PlaybooksDir })
	set("log-level", func() { c.LogLevel = flagCfg.LogLevel })
	set("baseline", func() { c.Baseline.File = flagCfg.Baseline.File })
	set("cluster", func() { c.Cluster.Enabled = flagCfg.Cluster.Enabled })
	set("node", func() { c.Cluster.Node = flagCfg.Cluster.Node })
}

func natsMode(c node.Config) string {
	if c.NATSURL == "" {
		return "embedded"
	}
	return c.NATSURL
}

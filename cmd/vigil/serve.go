package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-iot/vigil/agent/protocol"
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
			ctx := cmd.Context()
			a, err := openApp(ctx, cfg, log)
			if err != nil {
				return err
			}
			// The stages run until shutdown stops them one after the
			// other: SIGTERM only starts the shutdown.
			if err := a.start(context.WithoutCancel(ctx)); err != nil {
				a.close()
				return err
			}
			log.Info("vigil serving", "url", a.URL, "data_dir", cfg.DataDir, "nats", natsMode(cfg), "store", cfg.Store.describe(cfg.DataDir))
			if a.adminToken != "" {
				// On stdout and in a 0600 file, never in the log.
				if path, err := announceBootstrapToken(cmd.OutOrStdout(), cfg.DataDir, a.adminToken); err != nil {
					log.Error("first start: the bootstrap admin token is on stdout only", "err", err)
				} else {
					log.Info("first start: the bootstrap admin token is on stdout and in a file readable by this user only", "file", path)
				}
			}
			failed := make(chan error, 1)
			go func() { failed <- a.wait() }()
			select {
			case err := <-failed: // a stage failed: the others are stopping
				a.close()
				return err
			case <-ctx.Done():
			}
			// A second signal stops the process at once.
			signal.Reset(os.Interrupt, syscall.SIGTERM)
			return a.shutdown(failed)
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
	f.StringVar(&cfg.SecretsKeyFile, "secrets-key-file", "", "key file encrypting the keys shared through a postgres store (default $"+secretsKeyEnv+")")
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

func natsMode(c config) string {
	if c.NATSURL == "" {
		return "embedded"
	}
	return c.NATSURL
}

// shutdown stops the server in order, each stage with a log line: the
// listener stops accepting connections and the requests in flight (ingest
// among them) end, which publishes what they accepted; then the consumers
// stop; then the store is flushed and closed; last the bus, whose
// embedded NATS server shuts down cleanly so that the next start finds
// JetStream's state written and does not recover it. stages is the
// channel on which the stages' end is reported (a.wait).
func (a *app) shutdown(stages <-chan error) error {
	log := a.log.With("component", "serve")
	start := time.Now()
	log.Info("shutting down: HTTP listener closed, finishing requests in flight")
	hctx, cancel := context.WithTimeout(context.Background(), httpDrainTimeout)
	a.stopRequests() // agents' long polls end now; other requests finish
	err := a.http.Shutdown(hctx)
	cancel()
	if err != nil {
		log.Warn("HTTP requests cut at the drain timeout", "timeout", httpDrainTimeout, "err", err)
	}
	log.Info("HTTP stopped, ingest drained", "took", time.Since(start).Round(time.Millisecond))
	a.cancel()
	err = <-stages
	log.Info("consumers stopped", "took", time.Since(start).Round(time.Millisecond))
	if a.vuln != nil {
		a.vuln.Flush()
	}
	if cerr := a.store.Close(); cerr != nil {
		log.Error("cannot close the store", "err", cerr)
	}
	a.store = nil
	log.Info("store flushed and closed", "took", time.Since(start).Round(time.Millisecond))
	a.bus.Close()
	a.bus = nil
	log.Info("bus closed, JetStream shut down", "took", time.Since(start).Round(time.Millisecond))
	log.Info("vigil stopped", "took", time.Since(start).Round(time.Millisecond))
	return err
}

// httpDrainTimeout bounds how long shutdown waits for requests in flight.
const httpDrainTimeout = 5 * time.Second

// withStop serves h, with the context of an agent's long poll for
// commands also cancelled when stop is: http.Server.Shutdown waits for
// requests in flight but does not cancel them, and a poll waits up to a
// minute for a command. Other requests (ingest) run to their end.
func withStop(stop context.Context, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != protocol.PathCommands {
			h.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		defer context.AfterFunc(stop, cancel)()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}

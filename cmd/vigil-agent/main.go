// Command vigil-agent is Vigil's device agent: it enrolls with a Vigil
// server, then reports the device's inventory, health, network state and
// security events over HTTPS with mutual TLS, and runs signed commands.
//
//	vigil-agent enroll --server URL --token T [--state DIR] [--ca FILE]
//	vigil-agent run [--config FILE] [--once]
//	vigil-agent version
//	vigil-agent simulate --count N --server URL --ca FILE (--tokens FILE | --admin-token T) [--interval D] [--duration D]
//
// It is built with CGO_ENABLED=0 and links the standard library and the
// agent and wire packages only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"sync"
	"syscall"

	"github.com/vigil-iot/vigil/agent"
)

func main() {
	// A device has little memory and the agent allocates little per cycle:
	// collect at a quarter of the live heap instead of all of it (GOGC=25).
	// The GOGC environment variable still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(25)
	}
	// One processor: the agent has no parallel work, and each processor
	// costs memory (its allocation cache, more threads and stacks). The
	// GOMAXPROCS environment variable still wins.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage:
  vigil-agent enroll --server URL --token T [--state DIR] [--ca FILE]
  vigil-agent run [--config FILE] [--once]
  vigil-agent version
  vigil-agent simulate --count N --server URL --ca FILE (--tokens FILE | --admin-token T [--class C]) [--interval 60s] [--duration 0]
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "version":
		fmt.Fprintln(stdout, "vigil-agent", agent.Version)
		return 0
	case "enroll":
		return cmdEnroll(ctx, args[1:], stdout, stderr)
	case "run":
		return runAgent(ctx, args[1:], stderr)
	case "simulate":
		return simulate(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "vigil-agent: unknown command %q\n%s", args[0], usage)
	return 2
}

func cmdEnroll(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("enroll", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "", "Vigil server base URL (https://host:port)")
	token := fs.String("token", "", "enrollment token (vigil ctl enroll-token create)")
	state := fs.String("state", agent.DefaultStateDir, "state directory for key and certificates")
	ca := fs.String("ca", "", "PEM file of the CA that signs the server's certificate (default: system roots)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *server == "" || *token == "" {
		fmt.Fprintln(stderr, "vigil-agent enroll: --server and --token are required")
		return 2
	}
	id, err := agent.Enroll(ctx, agent.EnrollOptions{Server: *server, Token: *token, StateDir: *state, CAFile: *ca, Hostname: agent.Hostname()})
	if err != nil {
		fmt.Fprintln(stderr, "vigil-agent:", err)
		return 1
	}
	fmt.Fprintf(stdout, "enrolled as %s; identity in %s\n", id.DeviceID, *state)
	if id.UpdateKey() == nil {
		fmt.Fprintln(stderr, "warning: the server handed no update key: updates are refused until a renewal brings one or the config pins update_key")
	}
	return 0
}

func runAgent(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", agent.DefaultConfigPath, "config file (JSON)")
	once := fs.Bool("once", false, "collect, report, and exit (0 when every report was delivered)")
	verbose := fs.Bool("v", false, "log at debug level")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg, err := agent.LoadConfig(*cfgPath)
	if err != nil && !(errors.Is(err, os.ErrNotExist) && *cfgPath == agent.DefaultConfigPath) {
		log.Error("cannot start", "err", err)
		return 1
	}
	var dropped sync.Once
	idle := func() {
		debug.FreeOSMemory()
		dropped.Do(func() { log.Debug("binary pages unmapped after start-up", "bytes", dropBinaryPages()) })
	}
	a, err := agent.New(cfg, agent.Options{Logger: log, Idle: idle})
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	defer a.Close()
	if *once {
		if err := a.Once(ctx); err != nil {
			log.Error("report not delivered; it stays spooled", "err", err)
			return 1
		}
		return 0
	}
	if err := a.Run(ctx); err != nil {
		log.Error("agent stopped", "err", err)
		return 1
	}
	return 0
}

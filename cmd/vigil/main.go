// Command vigil is Vigil's server and its tools: serve runs the pipeline,
// demo runs it on a simulated fleet, ctl talks to a running server, bench
// measures it. This is the one place where the stages are wired together.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		var ec exitCode
		if asExitCode(err, &ec) {
			os.Exit(int(ec))
		}
		fmt.Fprintln(os.Stderr, "vigil:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "vigil",
		Short:         "IoT security monitoring, detection and response",
		SilenceUsage:  true,
		SilenceErrors: true,
		// No command but serve makes a data dir as a side effect.
		PersistentPreRunE: checkDataDirFlags,
	}
	root.AddCommand(newServeCmd(), newDemoCmd(), newCtlCmd(), newBenchCmd(), newRulesCmd(), newDetectCmd(), newIntelCmd(), newVulnCmd(), newReportCmd(), newSensorCmd())
	root.AddCommand(newPlaybooksCmd(), newAuditCmd(), newBaselineCmd())
	root.AddCommand(newIngestCmd())
	root.AddCommand(newUpdateCmd())
	return root
}

// exitCode is an error that only sets the process's exit status: the
// command has already said what it had to say.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func asExitCode(err error, ec *exitCode) bool {
	e, ok := err.(exitCode)
	if ok {
		*ec = e
	}
	return ok
}

// newLogger returns the process logger at the given level, as text on w.
func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

package command

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Executor carries out a verified command and returns its output.
type Executor interface {
	Execute(ctx context.Context, c Command) (string, error)
}

// System executes commands on this machine.
type System struct {
	// ServerAddrs stay reachable while isolated (the Vigil server's IPs).
	ServerAddrs []netip.Addr
	// Firewall is "nft", "iptables" or "" (nft when found, else iptables;
	// isolate also falls back to iptables when nft fails).
	Firewall string
	// ServiceCommand, when set, runs instead of systemctl or init.d, with
	// the words "{action}" and "{service}" replaced ("stop" or "restart").
	ServiceCommand []string
	// ParamFile is the "key=value" file set_param writes.
	ParamFile string
	// Installer runs an update: the word "{file}" is replaced by the
	// artifact's path. Rollback runs when the installer fails.
	Installer []string
	Rollback  []string
	// Updater, when set, installs updates instead of Installer and
	// Rollback (the agent's update.installer: script, dpkg, opkg, apk, ab).
	Updater Installer
	// Kept keeps the installed artifacts for rollback (Dir empty: none
	// kept; only the installer's own rollback then).
	Kept Kept
	// Fetch downloads an update artifact (over the agent's mTLS client).
	Fetch func(ctx context.Context, url string) (io.ReadCloser, error)
	// UpdateKey verifies update artifacts: the server's update key, never
	// its command key.
	UpdateKey ed25519.PublicKey
	// UpdateKeys, when set, is asked for the update key at each update
	// instead of UpdateKey (the agent's: the key its server handed at
	// enrollment or renewal, checked against the key its configuration
	// pins). An error refuses the update, before any download, with it.
	UpdateKeys func() (ed25519.PublicKey, error)
	// RebootCommand defaults to ["reboot"].
	RebootCommand []string
	// ShutdownCommand replaces poweroff or halt for shutdown when set.
	ShutdownCommand []string
	// ShutdownDelay, when positive, makes shutdown return at once and run
	// its command that much later, so that the agent's result reaches the
	// server (which then counts the device contained) before the device
	// goes down. A failure then can only be logged.
	ShutdownDelay time.Duration
	// Policy is the local command policy: how stop_service stops a service
	// it names (Policy.Stop) and how shutdown takes the device down. The
	// Verifier has already checked that the action is allowed; shutdown is
	// refused here too when no policy allows it.
	Policy *Policy
	// Root prefixes /proc and /run paths (tests).
	Root string
	// Run runs a program and returns its combined output (default
	// exec.CommandContext); tests replace it to see the commands.
	Run func(ctx context.Context, argv []string, stdin string) (string, error)
	// LookPath finds a program (default exec.LookPath); tests replace it.
	LookPath func(file string) (string, error)
}

var _ Executor = (*System)(nil)

// Execute runs c.
func (s *System) Execute(ctx context.Context, c Command) (string, error) {
	switch c.Action {
	case ActionIsolate:
		return s.isolate(ctx)
	case ActionRestore:
		return s.restore(ctx)
	case ActionKillProcess:
		return s.kill(c.Params)
	case ActionStopService:
		return s.stop(ctx, c.Params["service"])
	case ActionRestartService:
		return s.service(ctx, "restart", c.Params["service"])
	case ActionSetParam:
		return s.setParam(c.Params["key"], c.Params["value"])
	case ActionUpdate:
		return s.update(ctx, c.Params)
	case ActionRollback:
		return s.rollback(ctx, c.Params)
	case ActionBlock:
		return s.block(ctx, c.Params, false)
	case ActionUnblock:
		return s.block(ctx, c.Params, true)
	case ActionReboot:
		argv := s.RebootCommand
		if len(argv) == 0 {
			argv = []string{"reboot"}
		}
		return s.run(ctx, argv, "")
	case ActionShutdown:
		return s.shutdown(ctx)
	}
	return "", fmt.Errorf("unknown action %q", c.Action)
}

func (s *System) run(ctx context.Context, argv []string, stdin string) (string, error) {
	if s.Run != nil {
		return s.Run(ctx, argv, stdin)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w", argv[0], err)
	}
	return string(out), nil
}

func (s *System) path(p string) string {
	if s.Root == "" {
		return p
	}
	return filepath.Join(s.Root, p)
}

func (s *System) kill(p map[string]string) (string, error) {
	pid, err := strconv.Atoi(p["pid"])
	if err != nil || pid <= 1 {
		return "", fmt.Errorf("cannot kill: invalid pid %q", p["pid"])
	}
	if pid == os.Getpid() {
		return "", errors.New("cannot kill: that is the agent itself")
	}
	comm, err := os.ReadFile(s.path("/proc/" + strconv.Itoa(pid) + "/comm"))
	if err != nil {
		return "", fmt.Errorf("cannot kill %d: no such process", pid)
	}
	name := strings.TrimSpace(string(comm))
	if want := p["name"]; want != "" && want != name {
		return "", fmt.Errorf("cannot kill %d: it is %q, not %q", pid, name, want)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return "", fmt.Errorf("cannot kill %d: %w", pid, err)
	}
	return fmt.Sprintf("killed %d (%s)", pid, name), nil
}

// validService reports whether name can be a service name (no path, no
// shell or whitespace characters).
func validService(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.ContainsAny(name, "/ \t\n;&|$`")
}

// stop stops a service the way the policy's stop names, else as
// restart_service would.
func (s *System) stop(ctx context.Context, name string) (string, error) {
	if !validService(name) {
		return "", fmt.Errorf("cannot stop service: invalid name %q", name)
	}
	var how string
	if s.Policy != nil {
		how = s.Policy.Stop[name]
	}
	var argv []string
	switch how {
	case "":
		return s.service(ctx, "stop", name)
	case StopSystemd:
		argv = []string{"systemctl", "stop", name}
	case StopInitd:
		argv = []string{"/etc/init.d/" + name, "stop"}
	case StopServiceCommand:
		if len(s.ServiceCommand) == 0 {
			return "", fmt.Errorf("cannot stop service %q: the policy says service_command and none is configured", name)
		}
		for _, w := range s.ServiceCommand {
			argv = append(argv, strings.NewReplacer("{action}", "stop", "{service}", name).Replace(w))
		}
	default:
		return "", fmt.Errorf("cannot stop service %q: unknown method %q", name, how)
	}
	out, err := s.run(ctx, argv, "")
	if err != nil {
		return out, fmt.Errorf("cannot stop service %q: %w", name, err)
	}
	return fmt.Sprintf("stopped %s (%s)\n%s", name, strings.Join(argv, " "), out), nil
}

// shutdown powers the device off, or halts it, as the policy says.
func (s *System) shutdown(ctx context.Context) (string, error) {
	if s.Policy == nil || !slices.Contains(s.Policy.Allow, ActionShutdown) {
		return "", errors.New("cannot shut down: the local policy does not allow shutdown")
	}
	argv := s.ShutdownCommand
	if len(argv) == 0 {
		mode := s.Policy.Shutdown
		if mode == "" {
			mode = ShutdownPoweroff
		}
		argv = []string{mode}
	}
	if s.ShutdownDelay > 0 {
		time.AfterFunc(s.ShutdownDelay, func() {
			if out, err := s.run(context.Background(), argv, ""); err != nil {
				slog.Error("cannot shut down", "argv", argv, "output", out, "err", err)
			}
		})
		return fmt.Sprintf("shutting down in %s (%s)", s.ShutdownDelay, strings.Join(argv, " ")), nil
	}
	out, err := s.run(ctx, argv, "")
	if err != nil {
		return out, fmt.Errorf("cannot shut down: %w", err)
	}
	return fmt.Sprintf("shutting down (%s)\n%s", strings.Join(argv, " "), out), nil
}

func (s *System) service(ctx context.Context, action, name string) (string, error) {
	if !validService(name) {
		return "", fmt.Errorf("cannot %s service: invalid name %q", action, name)
	}
	var argv []string
	switch {
	case len(s.ServiceCommand) > 0:
		for _, w := range s.ServiceCommand {
			argv = append(argv, strings.NewReplacer("{action}", action, "{service}", name).Replace(w))
		}
	case exists(s.path("/run/systemd/system")):
		argv = []string{"systemctl", action, name}
	case exists(s.path("/etc/init.d/" + name)):
		argv = []string{"/etc/init.d/" + name, action}
	default:
		return "", fmt.Errorf("cannot %s service %q: no systemd, no /etc/init.d/%s and no service_command configured", action, name, name)
	}
	return s.run(ctx, argv, "")
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// SetParam writes key=value into a "key=value" file atomically (temporary
// file, fsync, rename), keeping the other lines as they are.
func SetParam(path, key, value string) error {
	if key == "" || strings.ContainsAny(key, "=\n\r") || strings.ContainsAny(value, "\n\r") {
		return fmt.Errorf("cannot set parameter: invalid key %q or value", key)
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cannot set parameter: %w", err)
	}
	var b bytes.Buffer
	found := false
	sc := bufio.NewScanner(bytes.NewReader(old))
	for sc.Scan() {
		line := sc.Text()
		if k, _, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == key {
			if !found {
				fmt.Fprintf(&b, "%s=%s\n", key, value)
			}
			found = true
			continue
		}
		b.WriteString(line + "\n")
	}
	if !found {
		fmt.Fprintf(&b, "%s=%s\n", key, value)
	}
	perm := os.FileMode(0o644)
	if fi, err := os.Stat(path); err == nil {
		perm = fi.Mode().Perm()
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("cannot set parameter: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b.Bytes()); err != nil {
		f.Close()
		return fmt.Errorf("cannot set parameter: %w", err)
	}
	f.Chmod(perm)
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("cannot set parameter: %w", err)
	}
	f.Close()
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("cannot set parameter: %w", err)
	}
	return nil
}

func (s *System) setParam(key, value string) (string, error) {
	if s.ParamFile == "" {
		return "", errors.New("cannot set parameter: no param_file configured")
	}
	if err := SetParam(s.ParamFile, key, value); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s=%s written to %s", key, value, s.ParamFile), nil
}

// installer returns the configured installer: Updater, else the
// installer and rollback command templates.
func (s *System) installer() (Installer, error) {
	if s.Updater != nil {
		return s.Updater, nil
	}
	if len(s.Installer) == 0 {
		return nil, errors.New("no installer configured")
	}
	run := func(ctx context.Context, argv []string, env []string) (string, error) {
		if s.Run != nil {
			return s.Run(ctx, argv, "")
		}
		return ExecRunner(ctx, argv, env)
	}
	return &TemplateInstaller{InstallCmd: s.Installer, RollbackCmd: s.Rollback, Run: run}, nil
}

// updateProduct is the product an update or rollback names ("firmware"
// when the command names none, as before products were sent).
func updateProduct(p map[string]string) string {
	if p["product"] != "" {
		return p["product"]
	}
	return "firmware"
}

// update downloads, verifies and installs an artifact through the
// configured installer. When the installer fails, the version before is
// restored (from its kept artifact when there is one). When it succeeds,
// the artifact is kept for a later rollback.
func (s *System) update(ctx context.Context, p map[string]string) (string, error) {
	inst, err := s.installer()
	if err != nil || s.Fetch == nil {
		return "", errors.New("cannot update: no installer configured")
	}
	key := s.UpdateKey
	if s.UpdateKeys != nil {
		if key, err = s.UpdateKeys(); err != nil {
			return "", fmt.Errorf("cannot update: %w", err)
		}
	}
	if len(key) != ed25519.PublicKeySize {
		return "", errors.New("cannot update: no update key to verify the artifact with")
	}
	if _, err := hex.DecodeString(p["sha256"]); err != nil || len(p["sha256"]) != 2*sha256.Size {
		return "", fmt.Errorf("cannot update: invalid sha256 %q", p["sha256"])
	}
	product := updateProduct(p)
	if !validProduct(product) {
		return "", fmt.Errorf("cannot update: invalid product %q", product)
	}
	rc, err := s.Fetch(ctx, p["url"])
	if err != nil {
		return "", fmt.Errorf("cannot update: cannot download %s: %w", p["url"], err)
	}
	defer rc.Close()
	f, err := os.CreateTemp("", "vigil-update-*")
	if err != nil {
		return "", fmt.Errorf("cannot update: %w", err)
	}
	defer os.Remove(f.Name())
	var buf bytes.Buffer
	if _, err := io.Copy(io.MultiWriter(f, &buf), io.LimitReader(rc, 256<<20)); err != nil {
		f.Close()
		return "", fmt.Errorf("cannot update: download: %w", err)
	}
	f.Close()
	if err := VerifyArtifact(key, buf.Bytes(), p["sha256"], p["signature"]); err != nil {
		return "", fmt.Errorf("cannot update: %w", err)
	}
	os.Chmod(f.Name(), 0o700)
	ictx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	u := Update{Product: product, Version: p["version"]}
	out, err := inst.Install(ictx, f.Name(), u)
	if err != nil {
		before, _ := s.Kept.Get(product, "current")
		rout, rerr := inst.Restore(ctx, before.File, Update{Product: product, Version: before.Version})
		out += "\nrollback: " + rout
		if rerr != nil {
			return out, fmt.Errorf("cannot update: installer failed (%v) and rollback failed: %w", err, rerr)
		}
		return out, fmt.Errorf("cannot update: installer failed, rolled back: %w", err)
	}
	if s.Kept.Dir != "" {
		if err := s.Kept.Installed(product, p["version"], f.Name()); err != nil {
			out += "\n" + err.Error()
		}
	}
	return fmt.Sprintf("updated %s to %s\n%s", product, p["version"], out), nil
}

// rollback restores the version installed before the last update of a
// product, from the kept artifact of that version.
func (s *System) rollback(ctx context.Context, p map[string]string) (string, error) {
	inst, err := s.installer()
	if err != nil {
		return "", fmt.Errorf("cannot roll back: %w", err)
	}
	product := updateProduct(p)
	if !validProduct(product) {
		return "", fmt.Errorf("cannot roll back: invalid product %q", product)
	}
	prev, ok := s.Kept.Get(product, "previous")
	if !ok {
		// Nothing kept (the first update through this agent): the
		// installer's own rollback, to the version the server names.
		if p["version"] == "" && s.Updater == nil {
			return "", fmt.Errorf("cannot roll back %s: no previous version kept", product)
		}
		prev = KeptVersion{Version: p["version"]}
	}
	ictx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	out, err := inst.Restore(ictx, prev.File, Update{Product: product, Version: prev.Version})
	if err != nil {
		return out, fmt.Errorf("cannot roll back %s to %s: %w", product, prev.Version, err)
	}
	if err := s.Kept.RolledBack(product); err != nil && ok {
		out += "\n" + err.Error()
	}
	return fmt.Sprintf("rolled back %s to %s\n%s", product, prev.Version, out), nil
}

package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Installer kinds an agent's configuration names (update.installer).
const (
	InstallerScript  = "script"  // a device owner's script: SCRIPT install FILE, SCRIPT rollback [FILE]
	InstallerDpkg    = "dpkg"    // dpkg -i (Debian-based devices)
	InstallerOpkg    = "opkg"    // opkg install (OpenWrt)
	InstallerApk     = "apk"     // apk add (Alpine)
	InstallerAB      = "ab"      // an A/B image tool (RAUC, SWUpdate, Mender) given as command templates
	InstallerCommand = "command" // command templates (the agent's older installer/rollback settings)
)

// Installers lists the installer kinds.
var Installers = []string{InstallerScript, InstallerDpkg, InstallerOpkg, InstallerApk, InstallerAB, InstallerCommand}

// Update names what an artifact installs.
type Update struct {
	Product string
	Version string
}

// Installer installs update artifacts on the device. Install installs the
// verified artifact in file; when it fails the device may be half
// installed and the caller calls Restore. Restore brings the product back
// to u.Version (the version before) from the artifact kept for that
// version, file, or "" when none was kept: an installer that cannot
// restore without it says so in its error.
type Installer interface {
	Install(ctx context.Context, file string, u Update) (string, error)
	Restore(ctx context.Context, file string, u Update) (string, error)
}

// Runner runs a command with extra environment variables and returns its
// combined output.
type Runner func(ctx context.Context, argv []string, env []string) (string, error)

// ExecRunner runs commands with os/exec.
func ExecRunner(ctx context.Context, argv []string, env []string) (string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w", argv[0], err)
	}
	return string(out), nil
}

// InstallConfig is the update section of an agent's configuration:
//
//	"update": {"installer": "script", "script": "/etc/vigil-agent/update.sh"}
//	"update": {"installer": "dpkg"}
//	"update": {"installer": "ab", "command": ["rauc", "install", "{file}"], "rollback_command": ["rauc", "status", "mark-active", "other"]}
//
// The command templates have the words {file}, {product} and {version}
// replaced.
type InstallConfig struct {
	Installer       string   `json:"installer"`
	Script          string   `json:"script,omitempty"`
	Command         []string `json:"command,omitempty"`
	RollbackCommand []string `json:"rollback_command,omitempty"`
	// Root is the file system dpkg installs into (--root; tests), else /.
	Root string `json:"root,omitempty"`
}

// NewInstaller builds the installer cfg names; run nil means ExecRunner.
func NewInstaller(cfg InstallConfig, run Runner) (Installer, error) {
	if run == nil {
		run = ExecRunner
	}
	switch cfg.Installer {
	case InstallerScript:
		if cfg.Script == "" || !filepath.IsAbs(cfg.Script) {
			return nil, fmt.Errorf("cannot configure the script installer: script %q must be an absolute path", cfg.Script)
		}
		return &ScriptInstaller{Script: cfg.Script, Run: run}, nil
	case InstallerDpkg:
		return &DpkgInstaller{Root: cfg.Root, Run: run}, nil
	case InstallerOpkg:
		return &TemplateInstaller{InstallCmd: []string{"opkg", "install", "{file}"}, RollbackCmd: []string{"opkg", "install", "--force-downgrade", "{file}"}, NeedFile: true, Run: run}, nil
	case InstallerApk:
		return &TemplateInstaller{InstallCmd: []string{"apk", "add", "--allow-untrusted", "{file}"}, RollbackCmd: []string{"apk", "add", "--allow-untrusted", "{file}"}, NeedFile: true, Run: run}, nil
	case InstallerAB, InstallerCommand:
		if len(cfg.Command) == 0 {
			return nil, fmt.Errorf("cannot configure the %s installer: no command", cfg.Installer)
		}
		return &TemplateInstaller{InstallCmd: cfg.Command, RollbackCmd: cfg.RollbackCommand, Run: run}, nil
	}
	return nil, fmt.Errorf("cannot configure the update installer: unknown installer %q: want one of %s", cfg.Installer, strings.Join(Installers, ", "))
}

// ScriptInstaller runs the device owner's script: "SCRIPT install FILE"
// to install and "SCRIPT rollback [FILE]" to restore, with VIGIL_PRODUCT
// and VIGIL_VERSION (the version installed, or restored) in its
// environment. A non-zero exit is a failure.
type ScriptInstaller struct {
	Script string
	Run    Runner
}

// Install runs SCRIPT install FILE.
func (s *ScriptInstaller) Install(ctx context.Context, file string, u Update) (string, error) {
	return s.Run(ctx, []string{s.Script, "install", file}, updateEnv(u))
}

// Restore runs SCRIPT rollback [FILE].
func (s *ScriptInstaller) Restore(ctx context.Context, file string, u Update) (string, error) {
	argv := []string{s.Script, "rollback"}
	if file != "" {
		argv = append(argv, file)
	}
	return s.Run(ctx, argv, updateEnv(u))
}

func updateEnv(u Update) []string {
	return []string{"VIGIL_PRODUCT=" + u.Product, "VIGIL_VERSION=" + u.Version}
}

// DpkgInstaller installs Debian packages with dpkg -i (into Root when
// set); it restores by installing the kept package of the version before
// (dpkg downgrades), and cannot without one.
type DpkgInstaller struct {
	Root string
	Run  Runner
}

func (d *DpkgInstaller) argv(file string) []string {
	argv := []string{"dpkg"}
	if d.Root != "" {
		argv = append(argv, "--root="+d.Root, "--force-script-chrootless", "--force-not-root")
	}
	return append(argv, "--force-downgrade", "-i", file)
}

// Install runs dpkg -i FILE.
func (d *DpkgInstaller) Install(ctx context.Context, file string, u Update) (string, error) {
	return d.Run(ctx, d.argv(file), updateEnv(u))
}

// Restore installs the kept package.
func (d *DpkgInstaller) Restore(ctx context.Context, file string, u Update) (string, error) {
	if file == "" {
		return "", fmt.Errorf("cannot restore %s %s: no package of it was kept", u.Product, u.Version)
	}
	return d.Run(ctx, d.argv(file), updateEnv(u))
}

// TemplateInstaller runs command templates ({file}, {product}, {version}
// replaced): opkg and apk, an A/B image tool, or the agent's older
// installer and rollback settings. NeedFile makes Restore fail without a
// kept artifact; an empty Rollback cannot restore at all.
type TemplateInstaller struct {
	InstallCmd, RollbackCmd []string
	NeedFile                bool
	Run                     Runner
}

func expand(tpl []string, file string, u Update) []string {
	out := make([]string, len(tpl))
	r := strings.NewReplacer("{file}", file, "{product}", u.Product, "{version}", u.Version)
	for i, w := range tpl {
		out[i] = r.Replace(w)
	}
	return out
}

// Install runs the install template.
func (t *TemplateInstaller) Install(ctx context.Context, file string, u Update) (string, error) {
	return t.Run(ctx, expand(t.InstallCmd, file, u), updateEnv(u))
}

// Restore runs the rollback template.
func (t *TemplateInstaller) Restore(ctx context.Context, file string, u Update) (string, error) {
	if len(t.RollbackCmd) == 0 {
		return "", errors.New("cannot restore: no rollback command configured")
	}
	if t.NeedFile && file == "" {
		return "", fmt.Errorf("cannot restore %s %s: no package of it was kept", u.Product, u.Version)
	}
	return t.Run(ctx, expand(t.RollbackCmd, file, u), updateEnv(u))
}

var (
	_ Installer = (*ScriptInstaller)(nil)
	_ Installer = (*DpkgInstaller)(nil)
	_ Installer = (*TemplateInstaller)(nil)
)

// Kept is what the agent keeps of one product for rollback: the artifact
// of the installed version (current) and of the one before (previous), in
// Dir/<product>/{current,previous}{,.json}.
type Kept struct {
	Dir string
}

// KeptVersion is one kept artifact.
type KeptVersion struct {
	Version string `json:"version"`
	// File is the kept artifact ("" when only the version is known).
	File string `json:"-"`
}

func (k Kept) dir(product string) (string, error) {
	if k.Dir == "" {
		return "", errors.New("no directory for kept artifacts")
	}
	if !validProduct(product) {
		return "", fmt.Errorf("invalid product name %q", product)
	}
	return filepath.Join(k.Dir, product), nil
}

func validProduct(p string) bool {
	return p != "" && len(p) <= 128 && p != "." && p != ".." && !strings.ContainsFunc(p, func(r rune) bool {
		return r <= ' ' || r == '/' || r == '\\' || r == 0x7f
	})
}

// Get returns the kept slot ("current" or "previous"); ok is false when
// nothing is kept there.
func (k Kept) Get(product, slot string) (KeptVersion, bool) {
	d, err := k.dir(product)
	if err != nil {
		return KeptVersion{}, false
	}
	b, err := os.ReadFile(filepath.Join(d, slot+".json"))
	if err != nil {
		return KeptVersion{}, false
	}
	var v KeptVersion
	if json.Unmarshal(b, &v) != nil {
		return KeptVersion{}, false
	}
	if _, err := os.Stat(filepath.Join(d, slot)); err == nil {
		v.File = filepath.Join(d, slot)
	}
	return v, true
}

// Installed records a successful install of file at version: the current
// slot becomes the previous one and file is copied into current.
func (k Kept) Installed(product, version, file string) error {
	d, err := k.dir(product)
	if err != nil {
		return fmt.Errorf("cannot keep artifact: %w", err)
	}
	if err := os.MkdirAll(d, 0o700); err != nil {
		return fmt.Errorf("cannot keep artifact: %w", err)
	}
	for _, n := range []string{"", ".json"} {
		os.Remove(filepath.Join(d, "previous"+n))
		if err := os.Rename(filepath.Join(d, "current"+n), filepath.Join(d, "previous"+n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("cannot keep artifact: %w", err)
		}
	}
	if file != "" {
		if err := copyFile(file, filepath.Join(d, "current")); err != nil {
			return fmt.Errorf("cannot keep artifact: %w", err)
		}
	}
	b, _ := json.Marshal(KeptVersion{Version: version})
	if err := os.WriteFile(filepath.Join(d, "current.json"), b, 0o600); err != nil {
		return fmt.Errorf("cannot keep artifact: %w", err)
	}
	return nil
}

// RolledBack records a rollback: previous becomes current again.
func (k Kept) RolledBack(product string) error {
	d, err := k.dir(product)
	if err != nil {
		return fmt.Errorf("cannot record rollback: %w", err)
	}
	for _, n := range []string{"", ".json"} {
		os.Remove(filepath.Join(d, "current"+n))
		if err := os.Rename(filepath.Join(d, "previous"+n), filepath.Join(d, "current"+n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("cannot record rollback: %w", err)
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

package command

import (
	"context"
	"crypto/ed25519"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func signedUpdate(t *testing.T, priv ed25519.PrivateKey, data []byte, product, version string) map[string]string {
	t.Helper()
	sum, sig, err := SignArtifact(priv, data)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"url": "/a", "sha256": sum, "signature": sig, "version": version, "product": product}
}

func serve(data []byte) func(context.Context, string) (io.ReadCloser, error) {
	return func(context.Context, string) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(string(data))), nil
	}
}

// updateScript is a device owner's script: an artifact is a file holding
// a version; install writes it to the version file, failing when the
// artifact says "fail" (after writing, so the rollback has work to do);
// rollback writes back the kept artifact's version, or VIGIL_VERSION.
const updateScript = `#!/bin/sh
set -e
vf="$(dirname "$0")/version"
case "$1" in
install)
	cat "$2" > "$vf"
	if grep -q fail "$2"; then echo "install failed" >&2; exit 3; fi
	echo "installed $VIGIL_PRODUCT $VIGIL_VERSION" ;;
rollback)
	if [ -n "$2" ]; then cat "$2" > "$vf"; else echo "$VIGIL_VERSION" > "$vf"; fi
	echo "restored $VIGIL_PRODUCT $VIGIL_VERSION" ;;
*) exit 2 ;;
esac
`

// TestScriptInstallerKeepsAndRollsBack runs a real script through
// update and rollback: the installed artifact is kept, a failing install
// is undone, and a rollback command brings back the version before.
func TestScriptInstallerKeepsAndRollsBack(t *testing.T) {
	pub, priv := keys(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "update.sh")
	os.WriteFile(script, []byte(updateScript), 0o755)
	vf := filepath.Join(dir, "version")
	os.WriteFile(vf, []byte("1.0\n"), 0o644)
	inst, err := NewInstaller(InstallConfig{Installer: InstallerScript, Script: script}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &System{UpdateKey: pub, Updater: inst, Kept: Kept{Dir: filepath.Join(dir, "kept")}}
	version := func() string { b, _ := os.ReadFile(vf); return strings.TrimSpace(string(b)) }
	do := func(action string, data []byte, version string) (string, error) {
		s.Fetch = serve(data)
		p := map[string]string{"product": "camfw"}
		if action == ActionUpdate {
			p = signedUpdate(t, priv, data, "camfw", version)
		}
		return s.Execute(context.Background(), Command{Action: action, Params: p})
	}
	if out, err := do(ActionUpdate, []byte("1.1\n"), "1.1"); err != nil || version() != "1.1" || !strings.Contains(out, "installed camfw 1.1") {
		t.Fatalf("update 1.1: %v %q, version %s", err, out, version())
	}
	if out, err := do(ActionUpdate, []byte("1.2\n"), "1.2"); err != nil || version() != "1.2" {
		t.Fatalf("update 1.2: %v %q", err, out)
	}
	// A failing install wrote its file, then the kept 1.2 came back.
	if out, err := do(ActionUpdate, []byte("1.3 fail\n"), "1.3"); err == nil || !strings.Contains(err.Error(), "rolled back") || version() != "1.2" {
		t.Fatalf("failing update: %v %q, version %s", err, out, version())
	}
	if out, err := do(ActionRollback, nil, ""); err != nil || version() != "1.1" || !strings.Contains(out, "rolled back camfw to 1.1") {
		t.Fatalf("rollback: %v %q, version %s", err, out, version())
	}
	if cur, ok := s.Kept.Get("camfw", "current"); !ok || cur.Version != "1.1" {
		t.Fatalf("kept current after rollback %+v %v", cur, ok)
	}
	if _, err := NewInstaller(InstallConfig{Installer: "yum"}, nil); err == nil {
		t.Error("an unknown installer was accepted")
	}
	if _, err := NewInstaller(InstallConfig{Installer: InstallerScript, Script: "update.sh"}, nil); err == nil {
		t.Error("a relative script path was accepted")
	}
	// One step back is kept; further back is the script's own rollback,
	// to the version the server names.
	s.Fetch = nil
	if _, err := s.Execute(context.Background(), Command{Action: ActionRollback, Params: map[string]string{"product": "camfw", "version": "1.0"}}); err != nil || version() != "1.0" {
		t.Fatalf("rollback with nothing kept: %v, version %s", err, version())
	}
}

// buildDeb makes a tiny package with dpkg-deb: /usr/share/NAME/version
// holds the version; a postinst exits 1 when fail is set.
func buildDeb(t *testing.T, dir, name, version string, fail bool) string {
	t.Helper()
	root := filepath.Join(dir, name+"-"+version)
	os.MkdirAll(filepath.Join(root, "DEBIAN"), 0o755)
	os.MkdirAll(filepath.Join(root, "usr/share", name), 0o755)
	os.WriteFile(filepath.Join(root, "DEBIAN/control"), []byte("Package: "+name+"\nVersion: "+version+"\nArchitecture: all\nMaintainer: Vigil <t@example.com>\nDescription: test package\n"), 0o644)
	if fail {
		os.WriteFile(filepath.Join(root, "DEBIAN/postinst"), []byte("#!/bin/sh\necho postinst fails >&2\nexit 1\n"), 0o755)
	}
	os.WriteFile(filepath.Join(root, "usr/share", name, "version"), []byte(version+"\n"), 0o644)
	deb := root + ".deb"
	if out, err := exec.Command("dpkg-deb", "--root-owner-group", "--build", root, deb).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb: %v\n%s", err, out)
	}
	return deb
}

// TestDpkgInstaller installs real .deb files with dpkg into a temp root:
// an update, a failing postinst that the kept package undoes, and a
// rollback to the version before.
func TestDpkgInstaller(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb not installed")
	}
	if os.Geteuid() != 0 {
		t.Skip("dpkg --root needs root here")
	}
	pub, priv := keys(t)
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "usr/share"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644)
	inst, _ := NewInstaller(InstallConfig{Installer: InstallerDpkg, Root: root}, nil)
	s := &System{UpdateKey: pub, Updater: inst, Kept: Kept{Dir: filepath.Join(dir, "kept")}}
	installed := func() string {
		b, _ := os.ReadFile(filepath.Join(root, "usr/share/vtest/version"))
		return strings.TrimSpace(string(b))
	}
	for _, v := range []struct {
		version string
		fail    bool
	}{{"1.0", false}, {"1.1", false}, {"1.2", true}} {
		data, _ := os.ReadFile(buildDeb(t, dir, "vtest", v.version, v.fail))
		s.Fetch = serve(data)
		out, err := s.Execute(context.Background(), Command{Action: ActionUpdate, Params: signedUpdate(t, priv, data, "vtest", v.version)})
		if v.fail != (err != nil) {
			t.Fatalf("install %s: %v\n%s", v.version, err, out)
		}
	}
	if installed() != "1.1" {
		t.Fatalf("after the failed 1.2, version %q, want 1.1 restored", installed())
	}
	if st, _ := os.ReadFile(filepath.Join(root, "var/lib/dpkg/status")); !strings.Contains(string(st), "Version: 1.1") || !strings.Contains(string(st), "install ok installed") {
		t.Fatalf("dpkg status:\n%s", st)
	}
	if out, err := s.Execute(context.Background(), Command{Action: ActionRollback, Params: map[string]string{"product": "vtest"}}); err != nil || installed() != "1.0" {
		t.Fatalf("rollback: %v %s, version %q", err, out, installed())
	}
	// dpkg cannot go further back without a kept package.
	if _, err := s.Execute(context.Background(), Command{Action: ActionRollback, Params: map[string]string{"product": "vtest", "version": "0.9"}}); err == nil || !strings.Contains(err.Error(), "no package of it was kept") {
		t.Fatalf("rollback with nothing kept: %v", err)
	}
}

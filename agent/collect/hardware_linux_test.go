package collect

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestHardwareKernelLogAsRoot writes an I/O error and an OOM kill to the
// machine's kernel log (/dev/kmsg) and finds them among the events of the
// next collection.
func TestHardwareKernelLogAsRoot(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to write to /dev/kmsg")
	}
	h := &Hardware{}
	defer h.Close()
	collectHW(t, h) // opens the log at its end
	if h.kmsg < 0 {
		t.Skip("cannot open /dev/kmsg for reading")
	}
	dev := fmt.Sprintf("vgt%d", os.Getpid())
	k, err := os.OpenFile("/dev/kmsg", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("cannot write to /dev/kmsg: %v", err)
	}
	for _, l := range []string{
		"<3>vigil-test: I/O error, dev " + dev + ", sector 2048 op 0x1:(WRITE) flags 0x0 phys_seg 1 prio class 0",
		"<3>vigil-test: Out of memory: Killed process 4242 (" + dev + ") total-vm:1024kB, anon-rss:512kB",
	} {
		if _, err := k.Write([]byte(l + "\n")); err != nil { // without the newline the kernel holds the record open
			t.Fatalf("cannot write to /dev/kmsg: %v", err)
		}
	}
	k.Close()
	_, evs := collectHW(t, h)
	found := map[string]bool{}
	for _, e := range evs {
		switch {
		case e.Action == ActionStorageError && e.Fields["hardware.device"] == dev:
			found[e.Action] = true
		case e.Action == ActionOOMKill && e.Fields["process.name"] == dev && e.Fields["process.pid"] == "4242":
			found[e.Action] = true
		}
	}
	if !found[ActionStorageError] || !found[ActionOOMKill] {
		t.Fatalf("want the storage error and the OOM kill of %s, got %v", dev, evs)
	}
}

// TestHardwareReadOnlyRemountOnLoopDevice mounts an ext4 image through a
// loop device in a private mount namespace, remounts it read-only, and
// expects the collector (reading that namespace's /proc/PID/mounts) to
// report it once.
func TestHardwareReadOnlyRemountOnLoopDevice(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to mount a loop device")
	}
	for _, tool := range []string{"mkfs.ext4", "unshare", "mount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "fs.img"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, make([]byte, 4<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v: %s", err, out)
	}
	c := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
		`set -e; mount -o loop "$1" "$2"; echo mounted; read x; mount -o remount,ro "$2"; echo readonly; read y`, "sh", img, mnt)
	in, _ := c.StdinPipe()
	out, _ := c.StdoutPipe()
	c.Stderr = os.Stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { in.Close(); c.Wait() }()
	lines := bufio.NewScanner(out)
	wait := func(want string) {
		t.Helper()
		if !lines.Scan() || lines.Text() != want {
			t.Fatalf("mount helper: want %q, got %q (%v)", want, lines.Text(), lines.Err())
		}
	}
	// A container may have no loop devices: that is no failure of the
	// collector.
	if !lines.Scan() || lines.Text() != "mounted" {
		t.Skipf("cannot mount a loop device here (%q, %v); the read-only remount is tested on data only", lines.Text(), lines.Err())
	}
	root := t.TempDir()
	if err := os.Symlink(fmt.Sprintf("/proc/%d", c.Process.Pid), filepath.Join(root, "proc")); err != nil {
		t.Fatal(err)
	}
	h := &Hardware{Env: Env{Root: root}}
	collectHW(t, h)
	if ro, ok := h.mountsRO[mnt]; !ok || ro {
		t.Fatalf("the loop file system %s is not seen writable: %v", mnt, h.mountsRO)
	}
	fmt.Fprintln(in)
	wait("readonly")
	_, evs := collectHW(t, h)
	if len(evs) != 1 || evs[0].Action != ActionFilesystemReadOnly || evs[0].Fields["mount.point"] != mnt ||
		evs[0].Fields["mount.fs_type"] != "ext4" {
		t.Fatalf("want one filesystem_readonly of %s, got %v", mnt, evs)
	}
	t.Logf("event: %v", evs[0].Fields)
	if _, evs := collectHW(t, h); len(evs) != 0 {
		t.Fatalf("still read-only: want no second event, got %v", evs)
	}
}

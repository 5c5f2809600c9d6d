// Package testfs makes real storage faults for tests: a small tmpfs that
// a test fills up. A full file system makes writes fail for real, even
// for root, which chmod does not. It is imported by tests only.
package testfs

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Tmpfs mounts a tmpfs of size ("8m") on a new directory and returns it,
// unmounted when the test ends. It skips the test where mounting is not
// allowed (not root, no mount).
func Tmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs (a full file system is the storage fault)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// Fill writes a file in dir until the file system is full and returns
// its path: removing it gives the space back.
func Fill(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for buf := make([]byte, 64<<10); ; {
		if _, err := f.Write(buf); err != nil {
			return p
		}
	}
}

package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// dropBinaryPages unmaps the pages of the agent's own binary that are
// mapped read-only (text, read-only data, pclntab) with
// madvise(MADV_DONTNEED). The pages stay in the page cache, shared and
// clean; the next use maps them again (a minor fault). Writable mappings
// are left alone: dropping them would lose their contents.
//
// Called once after start-up, it leaves mapped only what the steady loop
// touches: start-up (flags, config, identity and certificate parsing,
// the first package scan) runs code that never runs again, and the kernel
// maps 64 kB around each page a fault needs (fault-around), so without it
// almost the whole binary stays counted in the RSS. It returns the bytes
// unmapped.
func dropBinaryPages() int64 {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0
	}
	var n int64
	// strings, not bytes: the agent links strings.Fields already.
	for _, line := range strings.Split(string(maps), "\n") {
		// start-end perms offset dev inode path
		f := strings.Fields(line)
		if len(f) < 6 || f[5] != exe || len(f[1]) < 2 || f[1][1] == 'w' {
			continue
		}
		start, end, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		a, err1 := strconv.ParseUint(start, 16, 64)
		b, err2 := strconv.ParseUint(end, 16, 64)
		if err1 != nil || err2 != nil || b <= a {
			continue
		}
		if _, _, e := syscall.Syscall(syscall.SYS_MADVISE, uintptr(a), uintptr(b-a), syscall.MADV_DONTNEED); e == 0 {
			n += int64(b - a)
		}
	}
	return n
}

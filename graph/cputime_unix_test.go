//go:build unix

package graph_test

import (
	"syscall"
	"time"
)

// cpuTime returns the CPU time the process used so far (user and system,
// all threads: SQLite's work too).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

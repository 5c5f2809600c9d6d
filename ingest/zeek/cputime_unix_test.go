//go:build unix

package zeek

import (
	"syscall"
	"time"
)

// cpuTime returns the user and system CPU time the process has used:
// benchmarks report records per CPU second, which a busy machine does not
// change as much as wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

//go:build !unix

package baseline

import "time"

// cpuTime is not measured here: BenchmarkDetect reports no events/cpu-s.
func cpuTime() time.Duration { return 0 }

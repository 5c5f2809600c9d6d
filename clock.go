package vigil

import "time"

// Clock tells the time. Stages take one so that windows and timeouts test
// deterministically; production code uses SystemClock.
type Clock interface {
	Now() time.Time
}

// SystemClock is the real wall clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

package node

import (
	"strings"
	"testing"
	"time"
)

// TestUpdateSettleConfig: update.settle must be shorter than the wave
// timeout (default 30m); a server whose config says otherwise does not
// start, rather than run without update plans.
func TestUpdateSettleConfig(t *testing.T) {
	f := func(settle, wave time.Duration, wantErr bool) {
		t.Helper()
		cfg := DefaultConfig()
		cfg.DataDir = t.TempDir()
		cfg.Update.Settle, cfg.Update.WaveTimeout = Duration(settle), Duration(wave)
		err := cfg.Validate()
		if (err != nil) != wantErr || (err != nil && !strings.Contains(err.Error(), "update.settle")) {
			t.Errorf("settle %s, wave timeout %s: %v", settle, wave, err)
		}
	}
	f(0, 0, false)
	f(30*time.Second, 2*time.Minute, false)
	f(5*time.Minute, 0, false)
	f(5*time.Minute, 2*time.Minute, true)
	f(30*time.Minute, 0, true)
}

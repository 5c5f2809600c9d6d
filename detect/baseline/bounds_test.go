package baseline

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestHealthBounds: a device that learned two hours of health samples
// (CPU 10-20 %, memory 38-42 %, temperature 44-46) has bounds of its own
// that its normal samples stay under and that a CPU of 98 % or 80 degrees
// exceed; the CPU bound is at least the floor under which CPU is not
// judged (50 %). A device still learning, and one unknown, have none.
func TestHealthBounds(t *testing.T) {
	f := &fleet{d: New(Options{Learn: 2 * time.Hour})}
	rng := rand.New(rand.NewPCG(3, 4))
	f.inventory(0, "cam-1", "camera")
	for s := 0; s < 3*3600; s += 30 {
		f.send(health(time.Duration(s)*time.Second, "cam-1", map[string]any{"host.cpu.pct": 10 + 10*rng.Float64(),
			"host.memory.pct": 38 + 4*rng.Float64(), "host.temperature": 44 + 2*rng.Float64()}))
	}
	f.inventory(3*time.Hour, "cam-2", "camera")
	f.send(health(3*time.Hour, "cam-2", map[string]any{"host.cpu.pct": 12.0}))

	b, ok := f.d.HealthBounds("cam-1")
	if !ok {
		t.Fatal("no bounds for a device that learned")
	}
	check := func(name string, normal, off float64) {
		t.Helper()
		hi, ok := b[name]
		if !ok || hi < normal || hi >= off {
			t.Errorf("%s bound %v (present %v), want within [%v, %v)", name, hi, ok, normal, off)
		}
	}
	check("cpu_pct", 50, 98)
	check("memory_pct", 42, 80)
	check("temperature", 46, 80)
	if _, ok := b["connections"]; ok {
		t.Error("a bound for a gauge never sampled")
	}
	if b2, _ := f.d.HealthBounds("cam-1"); b2["cpu_pct"] != b["cpu_pct"] {
		t.Error("HealthBounds changed what it reads")
	}
	for _, dev := range []string{"cam-2", "nobody"} {
		if b, ok := f.d.HealthBounds(dev); ok || b != nil {
			t.Errorf("%s: bounds %v", dev, b)
		}
	}
}

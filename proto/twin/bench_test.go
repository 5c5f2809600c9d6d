package twin

import "testing"

// BenchmarkFlatten flattens a typical shadow update: a desired and a
// reported section, eight numbers, strings and a client token.
func BenchmarkFlatten(b *testing.B) {
	doc := []byte(`{"state":{"desired":{"heater":{"setpoint":21.5,"mode":"eco","hysteresis":0.5},"fan":{"rpm":1200}},"reported":{"heater":{"setpoint":21,"temp":19.75,"on":true},"fan":{"rpm":1180},"rssi":-61,"uptime":86400}},"clientToken":"c0ffee-1234"}`)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		d, err := Flatten(doc, "", false)
		if err != nil || len(d.Params) != 8 {
			b.Fatal(len(d.Params), err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "docs/s")
}

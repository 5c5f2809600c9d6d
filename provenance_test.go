package vigil

import "testing"

func TestTrustedProvenance(t *testing.T) {
	f := func(p, device string, want bool) {
		t.Helper()
		if got := TrustedProvenance(p, device); got != want {
			t.Errorf("TrustedProvenance(%q, %q) = %v", p, device, got)
		}
	}
	f(NewProvenance(ProvenanceDevice, "cam-1"), "cam-1", true)
	f(NewProvenance(ProvenanceDevice, "cam-1"), "cam-2", false)
	f(NewProvenance(ProvenanceDevice, "cam-1"), "", false)
	f(NewProvenance(ProvenanceMQTT, "cam-1"), "cam-1", true)
	f(NewProvenance(ProvenanceSensor, "s1"), "cam-1", true)
	f(NewProvenance(ProvenanceSensor, "s1"), "", true)
	f(NewProvenance(ProvenanceToken, "fleet"), "cam-1", false)
	f("", "cam-1", false)
	f("sensor-cert:", "cam-1", false)
	f("device-cert", "device-cert", false)
	f(ProvenanceUnknown, "cam-1", false)
}

func TestAlertProvenance(t *testing.T) {
	a := Alert{DeviceID: "cam-1"}
	if a.EvidenceTrusted() {
		t.Fatal("an alert without provenance is trusted")
	}
	a.AddProvenance("device-cert:cam-1")
	a.AddProvenance("device-cert:cam-1")
	a.AddProvenance("sensor-cert:s1")
	if len(a.Provenance) != 2 || !a.EvidenceTrusted() {
		t.Fatalf("Provenance %q, trusted %v", a.Provenance, a.EvidenceTrusted())
	}
	a.AddProvenance("")
	if a.Provenance[2] != ProvenanceUnknown || a.EvidenceTrusted() {
		t.Fatalf("Provenance %q: unknown evidence must not be trusted", a.Provenance)
	}
	b := Alert{DeviceID: "cam-1"}
	for i := range 40 {
		b.AddProvenance(NewProvenance(ProvenanceSensor, string(rune('a'+i))))
	}
	if len(b.Provenance) != MaxAlertProvenance || b.Provenance[MaxAlertProvenance-1] != ProvenanceMore || b.EvidenceTrusted() {
		t.Fatalf("full Provenance %q", b.Provenance)
	}
}

package vuln

import "time"

// Match rules, as named in Evidence.Rule.
const (
	// RulePURL: the component's purl has the advisory's type, namespace and
	// name, and its version is in range in that ecosystem's scheme.
	RulePURL = "purl"
	// RuleCPE: the component's CPE has the advisory's part, vendor and
	// product, and its version is in range.
	RuleCPE = "cpe"
	// RuleFirmware: the device's vendor and model, normalized, are the
	// advisory's CPE vendor and product (or product "<model>_firmware"),
	// and the device firmware version is in range.
	RuleFirmware = "firmware"
	// RulePURLMap: a non-distribution purl (generic, opkg) whose name is in
	// the explicit purl→CPE table (scan.PURLToCPE) is compared with the
	// CPE's ranges using its upstream version.
	RulePURLMap = "purl-cpe-map"
)

// Evidence explains one match.
type Evidence struct {
	Rule string `json:"rule"`
	// Advisory is the advisory id that matched (CVE id for NVD, OSV id,
	// CSAF tracking id/CVE) and Source its feed.
	Advisory string `json:"advisory"`
	Source   string `json:"source"`
	// Component is what the device runs: "lighttpd 1.4.59 (cpe ...)".
	Component string `json:"component"`
	// Matched is the advisory's product identifier (purl or CPE).
	Matched string `json:"matched"`
	// Versions is the affected versions that contain the component's
	// ("< 1.4.64", "= 2.1.0").
	Versions string `json:"versions"`
}

// Finding is one vulnerability on one component of one device.
type Finding struct {
	ID       string `json:"id"`
	DeviceID string `json:"device_id"`
	// Vuln is the CVE id when there is one, else the advisory id.
	Vuln    string   `json:"vuln"`
	Aliases []string `json:"aliases,omitempty"`
	Summary string   `json:"summary,omitempty"`
	// CVSS is the highest base score the matching advisories give.
	CVSS     float64 `json:"cvss,omitempty"`
	Severity string  `json:"severity"`

	KEV           bool      `json:"kev"`
	KEVDue        time.Time `json:"kev_due,omitzero"`
	KEVRansomware bool      `json:"kev_ransomware,omitempty"`

	Component        string `json:"component"`
	ComponentVersion string `json:"component_version"`
	// FixedVersion is the lowest fixed version the advisories name.
	FixedVersion string `json:"fixed_version,omitempty"`

	Evidence []Evidence `json:"evidence"`
	// Confidence is 0..1: how sure the match is (purl 0.95, cpe 0.9,
	// firmware 0.85, purl-cpe-map 0.7).
	Confidence float64 `json:"confidence"`

	// Exposed is set when the vulnerable service is reachable: Exposure
	// says how ("listening tcp/80 (lighttpd)", "traffic seen to tcp/443").
	Exposed  bool   `json:"exposed"`
	Exposure string `json:"exposure,omitempty"`
	// Rank orders findings: CVSS, +10 for KEV, +5 when the component itself
	// listens, +2 when only the device is reachable.
	Rank float64 `json:"rank"`

	// Suppressed, when set, says which VEX statement marks this
	// not_affected or fixed; suppressed findings raise nothing.
	Suppressed string `json:"suppressed,omitempty"`

	FirstSeen time.Time `json:"first_seen"`
}

// Package vuln holds Vigil's vulnerability vocabulary: advisories (what a
// feed says is affected, by purl or by CPE vendor and product, and in which
// version ranges), KEV entries, VEX statements, and findings (an advisory
// matched to a component of a device, with its evidence). It also owns the
// identity helpers the matching rests on: purl and CPE 2.3 parsing and
// version comparison per ecosystem (deb, opkg, apk, semver, generic
// firmware strings).
//
// Parsing feeds is feeds/{nvd,osv,kev,csaf,sbom,vex}'s job; matching and
// keeping state is vuln/scan's; reports are vuln/report's. This package
// does no I/O.
package vuln

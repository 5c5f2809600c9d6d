// Package vex imports VEX statements: OpenVEX documents and CycloneDX VEX
// (a CycloneDX BOM with a vulnerabilities array whose analysis states
// not_affected, resolved, exploitable, in_triage...). Products are given as
// purls or CPEs, or, for a device's firmware, as
// "vigil:firmware/<vendor>/<model>@<firmware>".
package vex

// Package sbom reads software bills of materials — CycloneDX 1.5/1.6 JSON
// and SPDX 2.3 JSON — into the components of a device model and firmware.
// Components keep their purl and CPE, which is what vulnerability matching
// keys on.
package sbom

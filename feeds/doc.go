// Package feeds holds the types every threat-intelligence importer produces:
// an Indicator (one observable value with its feed, confidence and validity)
// and the Result of one import. Importers live in sub-packages, one per
// format (stix, misp, plain, taxii for indicators; nvd, osv, kev, csaf, sbom,
// vex for vulnerability data, which produce vuln types). The catalog
// sub-package keeps the imported indicators of every feed on disk.
//
// This package parses nothing and does no I/O; it must not import its
// sub-packages.
package feeds

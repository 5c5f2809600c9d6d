// Package osv imports OSV advisories (one object, an array, or a
// {"vulns": [...]} query response). Affected packages are named by their
// purl, or by a purl built from the OSV ecosystem and package name; GIT
// ranges are ignored (Vigil compares released versions).
package osv

// Package nvd imports NVD CVE API 2.0 JSON: one API response page or a
// full data feed file (both have a "vulnerabilities" array), streamed so a
// full year's file does not have to fit in memory twice. Each CVE becomes a
// vuln.Advisory whose Affected entries are the configurations' vulnerable
// cpeMatch criteria with their version bounds. Rejected CVEs are skipped.
package nvd

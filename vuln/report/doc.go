// Package report builds the security posture report from vulnerability
// findings: devices by firmware, findings by severity, KEV exposure and
// overdue KEV items, exposed critical findings, and the trend; and writes
// it as HTML (html/template), CSV (one row per finding) or JSON.
//
// It reads what vuln/scan hands it and does no matching.
package report

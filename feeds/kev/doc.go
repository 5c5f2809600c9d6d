// Package kev imports CISA's Known Exploited Vulnerabilities catalog (the
// JSON at cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json).
package kev

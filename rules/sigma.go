package rules

import "embed"

// Sigma holds Vigil's IoT Sigma rule pack (sigma/*.yml): detection and
// correlation rules for the Sigma engine in detect/sigma. Each rule's test
// cases live under testdata/<rule file stem>/ and are not embedded.
//
//go:embed sigma
var Sigma embed.FS

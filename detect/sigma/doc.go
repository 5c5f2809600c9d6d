// Package sigma is Vigil's Sigma v2.1 engine: it parses Sigma rule files
// (detection rules, meta filters and correlation rules), compiles them into
// matcher trees, routes events to rules by logsource, translates Sigma
// taxonomy field names to Vigil's event fields through a mapping config,
// and evaluates rules over vigil.Event values (the online Detector) or over
// NDJSON lines scanned without allocation (offline detection).
//
// The package owns rule parsing, compilation, matching and correlation
// state. It must not publish on the bus, touch the store or read files other
// than the rule files and mapping config it is given; the CLI and the detect
// stage wire it in.
package sigma

// Package agent is the device agent's runtime: its configuration, its
// enrolled identity (key, certificate, CA, command key in the state
// directory), enrollment and renewal, the collection loops, the
// store-and-forward sender that reports over HTTPS with mutual TLS, and
// the command poller.
//
// The agent runs on constrained Linux devices. This package and its
// sub-packages use the standard library and package wire only; a test
// checks that cmd/vigil-agent links nothing else. It must never import a
// server package (root vigil, pki, web, ingest, ...).
//
// Data flow: collectors → report (events get random ids) → spool (disk)
// → sender (gzip, mTLS POST, jittered exponential backoff, paced backfill)
// → server. Commands: long poll → command.Verifier → command.Executor →
// result POSTed back.
package agent

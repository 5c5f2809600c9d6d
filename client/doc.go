// Package client is a small Go client of Vigil's REST API, for the CLI
// (vigil ctl), the demo and the load generator: list and get devices,
// alerts, incidents and events with their filters, manage tokens, and post
// agent reports and bulk events.
//
// Errors from the server come back as *Error, carrying the HTTP status,
// the vigil error code and, for a 429, the Retry-After delay; errors.As
// finds it, and vigil.ErrorCode(err) gives the code. The transport keeps
// HTTP/1.1 connections alive in a pool sized by WithMaxConns, so a load
// generator posting from many goroutines reuses connections instead of
// paying a TLS handshake per request.
//
// The client holds no state beyond its connections and makes no retry
// decision: the caller decides what to do with a 429 or a 500.
package client

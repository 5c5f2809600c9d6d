// Package web is Vigil's HTTP front: the REST API (devices, alerts,
// incidents, events, tokens), the mount point of the ingest endpoints,
// /metrics, /healthz and /readyz, and the listener that serves them over
// TLS.
//
// Every /api route declares the auth.Permission it needs; the server checks
// the caller's bearer token against the role table in package auth before
// the handler runs (401 without a valid token, 403 when the role lacks the
// permission). Errors are answered as {"error": {"code", "message"}} with
// one table from vigil error code to HTTP status (StatusOf).
//
// /metrics, /healthz and /readyz need no token by default: Prometheus
// usually scrapes without credentials on an internal network, and probes
// must work before any token exists. Options.MetricsAuth makes /metrics
// require a token with read permission.
//
// The package reads through store.Store and hands ingest requests to the
// handlers it is given; it makes no detection or response decision and
// never talks to the bus itself.
package web

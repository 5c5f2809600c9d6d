// Package httpin holds the HTTP handlers of the ingest API:
//
//	POST /api/v1/agent/report  one wire.Report, application/json or application/xml
//	POST /api/v1/events        NDJSON of normalized events (ingest/bulk)
//
// A handler reads the body within its size limit, decodes it, turns it
// into vigil.Events, publishes the valid ones in one call to a Publisher
// (the bus) and answers a wire.Response saying how many were accepted and
// which were rejected and why. A rejected item never reaches the
// publisher; the rest of the body does. Statuses: 200 when something was
// accepted (or nothing was sent), 400 when items were sent and none was
// accepted or the body cannot be read, 413 over the size limit, 415 for
// another content type or encoding, 429 with Retry-After when the bus
// pushes back (nothing of the body was accepted), 500 when the bus fails.
//
// Authentication and authorization are the web layer's, before these
// handlers. When the web layer knows which device is calling (an agent's
// credentials), it says so with WithDevice; that identity then replaces
// the device id of the report and of every bulk event.
//
// The package must not read the store or talk to detection: its only way
// out is the Publisher.
package httpin

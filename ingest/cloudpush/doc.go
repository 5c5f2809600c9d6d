// Package cloudpush is the HTTP endpoint cloud platforms push their audit
// logs to, so that no `vigil ingest` has to poll a bucket:
//
//	POST /api/v1/ingest/cloud/{format}   (or /api/v1/ingest/cloud with X-Vigil-Format: F)
//
// AWS EventBridge API destinations (CloudTrail events in their
// EventBridge envelope), Azure forwarders of Event Hub or Log Analytics
// records ({"records":[...]}, as a Function or Logic App relays them) and
// GCP Pub/Sub push subscriptions (one {"message":{"data":...}} envelope a
// request) each POST a body in their own format. The format is the path's
// last element or the X-Vigil-Format header; the readers are given by the
// caller (Options.Formats: cmd/ wires ingest/cloudtrail, ingest/azure and
// ingest/gcp), so this package imports none of them.
//
// A handler reads the body within its size limit (gzip allowed), reads
// every record with the format's reader, stamps the accepted events
// (received time, provenance of the caller's token, credentials redacted),
// publishes them in one call and answers a wire.Response: how many were
// accepted, and for each rejected record its index in the body and why.
// Statuses: 200 when something was accepted, 400 when nothing was (or
// the body held no record), 404 for a format it does not read, 413 over
// the size or record limit, 415 for another content encoding, 429 with
// Retry-After when the bus pushes back (nothing was accepted: the sender
// retries the whole body, as EventBridge and Pub/Sub do on 429), 500 when
// the bus fails.
//
// Authentication and authorization are the web layer's, before the
// handler. The package must not read the store or talk to detection: its
// only way out is the Publisher.
package cloudpush

// Package ingest holds what every ingest source shares: deterministic event
// ids for sources that retry, and the lifting of ECS 5-tuple fields into
// vigil.Event.Network. Each source lives in its own sub-package (agent for
// agent reports, bulk for NDJSON of normalized events, httpin for the HTTP
// handlers in front of both); sources turn their input into vigil.Events
// and hand them to a publisher, and never talk to detection or storage.
//
// This package must stay free of I/O and of any other stage.
package ingest

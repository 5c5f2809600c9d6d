// Package vigil holds Vigil's domain types: the Event that every source is
// normalized into, the Device inventory record, and the Alert, Incident,
// Action and AuditRecord that detection and response produce.
//
// The root package has no dependencies beyond the standard library. Every
// stage of the pipeline (ingest, bus, detect, alert, incident, store, web)
// lives in its own sub-package and talks to the others through these types;
// only cmd/ wires the stages together.
package vigil

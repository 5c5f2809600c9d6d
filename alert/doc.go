// Package alert handles alerts between detection and storage: it merges
// repeats of one alert (same DedupKey within the dedup window) into the
// first, drops alerts that a suppression rule silences, has each alert
// assigned to an incident, and stores it.
//
// The Stage consumes the bus's alert stream (consumer group "alerts"). It
// talks to incidents only through the IncidentAssigner interface defined
// here, so this package does not import incident/; cmd/ wires
// incident.Correlator in. It makes no response decisions and does not
// detect anything: detectors raise alerts, respond/ acts on incidents.
package alert

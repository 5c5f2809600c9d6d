// Package alert handles alerts between detection and storage: it merges
// repeats of one alert (same DedupKey within the dedup window) into the
// first, drops alerts that a suppression rule silences or an exception
// covers (Excepter: counted in the exception), has each alert
// assigned to an incident, and stores it.
//
// Re-fire control: a rule decides what one alert is through the DedupKey
// its detector gives (Sigma: rule and device, plus the values of the
// rule's once_per fields). An UntilCleared alert (once_per) takes its
// repeats whatever their age; any alert stops taking them once it is
// cleared, that is once its incident is resolved or a false positive, and
// the next repeat is a new alert.
//
// The Stage consumes the bus's alert stream (consumer group "alerts"). It
// talks to incidents only through the IncidentAssigner interface defined
// here, so this package does not import incident/; cmd/ wires
// incident.Correlator in. It makes no response decisions and does not
// detect anything: detectors raise alerts, respond/ acts on incidents.
package alert

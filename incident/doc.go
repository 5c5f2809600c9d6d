// Package incident groups alerts into incidents. It owns the grouping rule
// and the life of an incident (open → contained → resolved or
// false_positive), with the timestamps that time-to-detect and
// time-to-contain are computed from.
//
// Grouping: an alert joins an incident that is not closed (status open or
// contained) when it is about the same device or shares an entity
// ("ip:10.0.0.7", "user:root") with it, and its time falls within the
// grouping window of the incident's last update. Times are the alerts' own
// (Created, LastEventTime), never the wall clock, so a replay groups the
// same way. An alert that matches several incidents joins the most recently
// updated one; incidents are never merged (a later version may merge them
// into a campaign). Addresses in the traffic of unrelated devices never
// group: loopback, link-local, multicast, broadcast, unspecified and the
// server's own (Options.OwnAddrs); they are left out of Incident.Entities.
//
// Time to detect runs from when Vigil received the first evidence
// (Alert.FirstReceived) to the first alert. Alerts on replayed or
// backfilled evidence (Alert.Replayed, set by the detection stage) neither
// set nor move it; an incident made of them only is Replayed and has no
// time to detect.
//
// The Correlator keeps an in-memory index of joinable incidents by device
// and entity, rebuilt from the store when it starts, so a restart keeps
// grouping. It must not decide on responses (respond/ does) nor read the
// bus: the alert stage hands it alerts through alert.IncidentAssigner.
package incident

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
// into a campaign).
//
// The Correlator keeps an in-memory index of joinable incidents by device
// and entity, rebuilt from the store when it starts, so a restart keeps
// grouping. It must not decide on responses (respond/ does) nor read the
// bus: the alert stage hands it alerts through alert.IncidentAssigner.
package incident

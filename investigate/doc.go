// Package investigate answers an analyst's questions about incidents from
// what the store keeps: the entity graph around an entity, the blast
// radius of an incident (what its compromised devices reached or share a
// weakness with), campaigns (incidents on several devices linked by
// shared indicators, with one timeline) and the incident report (HTML).
//
// Everything is computed on request from the store, so an answer follows
// the events that arrived since the last one. The package reads only: it
// changes no incident, raises no alert and takes no action.
package investigate

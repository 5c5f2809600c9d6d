// Package newplace learns, per principal, the places its logins come from
// and raises an alert when a login comes from a place the principal has
// not used: a country, an autonomous system or a network (the /24 of an
// IPv4 address, the /48 of an IPv6 one) never seen for that account. It is
// the "console login from a new place" of cloud and fleet consoles: a
// stolen password is used from the thief's network, not from the
// operator's.
//
// A login is a successful event of category authentication or of kind
// auth that names a user (user.name) and comes from an address (source.ip):
// AWS console logins (ingest/cloudtrail), Entra ID sign-ins
// (ingest/azure), GCP logins (ingest/gcp), device and web logins. The
// principal is the user within its cloud account (cloud.provider,
// cloud.account.id) or on its device (the event's device id). The place's
// country and autonomous system come from source.geo.country_iso_code and
// source.as.number when the source or an enricher gives them.
//
// Like the baseline's novelty, a principal is learned for a learning
// period (event time, from its first login) before its new places alert;
// every login's places are learned, alerting or not, so a place alerts
// once. The detector is a detect.Enricher: it marks every login with
// login.new_place (true or false) and, when new, login.new_country,
// login.new_asn and login.new_network, so Sigma rules and correlations
// that run after it can require a login from a new place; and a
// detect.Detector that raises the alert, naming the new features, the
// observed values and the places it knew.
//
// State is per bus partition (events without a device id, cloud logins,
// share one), bounded in principals and in places per principal. The
// package must not do I/O or read the wall clock.
package newplace

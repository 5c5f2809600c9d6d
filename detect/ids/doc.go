// Package ids raises the alerts of the network monitors whose logs Vigil
// ingests: a Suricata alert (EVE event_type alert) or a Zeek notice
// becomes, through ingest/suricata and ingest/zeek, an event of kind
// "alert", and this detector raises it as a Vigil alert carrying the
// monitor's signature: its id (rule_id "suricata:<gid>:<sid>" or
// "zeek:<note>"), its text (the title), its category and its severity.
//
// A detector rather than a Sigma rule: a rule has one title and one level
// for every event it matches, whereas each signature must be an alert of
// its own, titled and graded as the monitor's rule writer chose, and
// deduplicated per signature and host pair. The detector keeps no state.
package ids

// Package threshold is Vigil's built-in detector for threshold and count
// rules written in YAML, such as "cpu above 90 for 3 consecutive health
// reports" or "at least 5 failed logins in 60 s on one device".
//
// It owns the rule schema, its loading and validation (LoadDir, LoadFiles,
// Parse) and the per-partition state of the rules. It does not consume
// the bus, stamp alert ids or creation times, publish or deduplicate
// alerts: the detect.Stage does that. It never reads the wall clock:
// windows use event time, so a replay raises the same alerts.
//
// # Rule schema
//
// One rule per YAML document (a file may hold several, separated by
// "---"). Unknown keys are errors.
//
//	id: vigil-auth-bruteforce        # required, unique: letters, digits, . _ -
//	title: Login brute force         # defaults to id
//	description: ...                 # optional, free text
//	references: [https://...]        # optional
//	type: count                      # required: threshold or count
//	level: high                      # informational, low, medium (default), high, critical
//	tags: [attack.credential_access, attack.t1110]   # attack.tNNNN become Alert.Techniques
//	where: {kind: auth, outcome: failure}             # all must match; a list means any of
//	where_not: {user.name: [backup, monitor]}         # excludes events matching all of these
//	group_by: [source.ip]            # groups within a device (device.id always groups)
//	entities: {source.ip: ip, user.name: user}        # field → entity type (this is the default)
//
//	# type threshold
//	field: host.cpu.pct              # the compared field
//	op: ">"                          # >, >=, <, <=, ==, != (or gt, gte, lt, lte, eq, ne)
//	value: 90                        # a number; a string only with == and !=
//	consecutive: 3                   # default 1, at most 1000
//
//	# type count
//	count: 5                         # at least 1, at most 10000
//	window: 60s                      # a Go duration: 90s, 5m, 1h
//
// where and where_not compare the text of a field (vigil.Event.FieldString:
// fixed fields such as kind, outcome, source.ip and destination.port, then
// Fields) to the listed values, exactly; a number in a rule also matches
// its canonical form ("90.0" matches 90). A list-valued field matches when
// one of its elements does. An absent field matches nothing.
//
// # Semantics
//
// Every rule is evaluated per group: the event's device plus the values of
// the group_by fields (an absent field groups as the empty value).
//
// A threshold rule counts, per group, the run of consecutive events that
// match where and meet "field op value", in partition (arrival) order. It
// fires once when the run reaches consecutive events, and stays quiet while
// the run lasts; the first matching event that does not meet the
// comparison ends the run and re-arms the rule. Events that match where
// but lack the field (or hold a non-number for a numeric comparison)
// neither extend nor end a run. The alert's evidence is the run.
//
// A count rule keeps, per group, the matching events that lie within
// window of the newest one by event time (an event exactly window older
// still counts). It fires when count of them are, then forgets them; it
// does not fire again for that group until window has passed (in event
// time) since it fired, while it keeps counting. So a sustained condition
// raises one alert per window, each with fresh evidence. Out-of-order
// events are placed by their time; one older than the window is dropped.
//
// An alert carries the rule's id, title, level and tags, the device, the
// entities of its evidence ("ip:10.0.0.7", "user:root"; at most 20), up
// to Options.MaxEvidence evidence event ids (the most recent),
// FirstEventTime and LastEventTime of the evidence, and a DedupKey
// "threshold:<rule>:<device>[:<group_by values>]".
//
// Loading returns the valid rules and one *LoadError ("file:line: reason",
// code EINVALID) per problem; a bad rule does not stop the others. A YAML
// syntax error stops the rest of its file, and its line is the parser's,
// which can be one early.
//
// State is bounded: each rule keeps at most Options.MaxGroups groups per
// partition and evicts the least recently updated one beyond that
// (counted in vigil_threshold_group_evictions_total{rule}); a group holds
// at most max(count, MaxEvidence) events.
package threshold

// Package audit writes and checks Vigil's tamper-evident audit trail.
//
// Recorder appends typed records (actor, action, object, detail) through
// store.Audit, which chains them by hash. Verify walks the stored chain,
// recomputes every hash and names the first record that does not hold:
// a hash that does not match its content, a prev_hash that does not match
// the record before it, or a gap in the sequence.
//
// The package owns no storage of its own and makes no response decisions;
// it must not rewrite or delete records, only read and append them.
package audit

// Package audit writes and checks Vigil's tamper-evident audit trail.
//
// Recorder appends typed records (actor, action, object, detail) through
// store.Audit, which chains them by hash and, opened with the audit key
// (EnsureKey: key material in the data dir, like the CA key), seals each
// with the HMAC of its hash. Verify walks the stored chain, recomputes
// every hash and names the first record that does not hold: a hash that
// does not match its content, a prev_hash that does not match the record
// before it, or a gap in the sequence. VerifyWith also checks the key's
// MACs (a trail rewritten by someone without the key does not carry them)
// and the last exported anchor (a truncated trail no longer holds the
// anchored record).
//
// Trail is the server's side: it seals a trail written before the key,
// exports anchors of the newest record to Sinks (a file, syslog, a
// webhook, and the log) and verifies against its last anchor.
//
// The package owns no storage of its own and makes no response decisions;
// it must not rewrite or delete records, only read and append them.
package audit

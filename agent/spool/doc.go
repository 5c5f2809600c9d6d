// Package spool is the agent's store-and-forward queue: records (encoded
// reports) appended to plain segment files on disk, read back oldest first
// and removed once delivered.
//
// It is bounded: when the segments exceed MaxBytes the oldest segment is
// deleted and its undelivered records are counted as dropped; the count
// survives restarts until the agent has reported it. Delivery is
// at-least-once: a record stays until Ack, so a crash between sending and
// Ack sends it again (the server deduplicates by event id).
//
// Each segment is a sequence of records: a 4-byte big-endian length, a
// 4-byte CRC-32 (IEEE) of the payload, the payload. The read position is
// kept in the file "cursor".
//
// Opening repairs what a power cut or a failing flash leaves: a torn or
// corrupt record ends what can be read of its segment (records carry no
// mark to find the next one), so it and what follows it in the segment
// are cut off and counted as dropped (one record, at least); a cursor
// that does not parse is replaced by one at the oldest record (reports
// are sent again: the server deduplicates); a cursor past the records of
// its segment, or inside one, resumes after the last record it passed.
//
// The package uses the standard library only; it is linked into the agent.
// A Spool is safe for one writer and one reader at a time.
package spool

package sqlite

// WriteErr returns why the store cannot write events: the error of the
// last write, when it failed (a full disk, a read-only or removed file, an
// I/O error), until a write succeeds again. Nil when the last write
// succeeded. Writes come again when the event sink retries the batches
// it could not store, so the error clears by itself once the fault is
// gone. /readyz answers 503 while it is set.
func (s *Store) WriteErr() error { return s.health.Err() }

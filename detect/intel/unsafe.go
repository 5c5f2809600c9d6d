package intel

import "unsafe"

// unsafeString views b as a string for a map lookup; the caller must not
// keep the result past b's next change.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

package wire

// Response is the server's answer to a report or a bulk post, whatever the
// status code.
type Response struct {
	// Accepted is the number of events that entered the pipeline.
	Accepted int `json:"accepted"`
	// Rejected lists what was refused and why; the rest went through.
	Rejected []Rejection `json:"rejected,omitempty"`
	// Code and Error are set when the request as a whole failed:
	// "invalid", "too_large", "unsupported_media_type", "busy",
	// "unauthorized", "forbidden", "internal".
	Code  string `json:"code,omitempty"`
	Error string `json:"error,omitempty"`
}

// Rejection is one refused item.
type Rejection struct {
	// Index is the item's position (from 0) in its list: the security
	// event in a report, the line's item in a bulk post. Absent when the
	// problem is not about one item.
	Index *int `json:"index,omitempty"`
	// Line and Offset place a bulk item in the body: its line (from 1) and
	// the byte offset of that line's start.
	Line   int    `json:"line,omitempty"`
	Offset *int64 `json:"offset,omitempty"`
	// Field is the path of the bad field ("events[3].time", "time").
	Field string `json:"field,omitempty"`
	// Error says what is wrong.
	Error string `json:"error"`
}

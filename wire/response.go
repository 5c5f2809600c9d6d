package wire

// Response is the server's answer to a report or a bulk post, whatever the
// status code.
type Response struct {
	// Accepted is the number of events that entered the pipeline.
	Accepted int `json:"accepted"`
	// Rejected lists what was refused and why; the rest went through.
	Rejected []Rejection `json:"rejected,omitempty"`
	// RejectedCount is the number of rejected items; Rejected lists at
	// most MaxRejections of them.
	RejectedCount int `json:"rejected_count,omitempty"`
	// Error is set when the request failed as a whole (any status but
	// 200), in the shape of every error answer of the Vigil API.
	Error *ErrorDetail `json:"error,omitempty"`
}

// MaxRejections is the most rejections a Response lists.
const MaxRejections = 1000

// ErrorDetail says why a request failed. Code is one of "invalid",
// "too_large", "unsupported_media_type", "busy", "unauthorized",
// "forbidden", "internal"; Message is for people.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
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

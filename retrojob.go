package vigil

import "time"

// Retro-hunt job states.
const (
	RetroRunning = "running"
	RetroDone    = "done"
	RetroFailed  = "failed"
	// RetroInterrupted is a running job that stopped making progress:
	// the node running it stopped (package hunt sets it on read).
	RetroInterrupted = "interrupted"
)

// RetroJob is the state of a retro-hunt (package hunt runs it): what it
// runs, how far it got and what it raised. It is kept in the store so
// that every node shows it and it outlives a restart.
type RetroJob struct {
	ID       string       `json:"id"`
	Spec     RetroJobSpec `json:"spec"`
	State    string       `json:"state"` // RetroRunning, RetroDone, RetroFailed, RetroInterrupted
	Started  time.Time    `json:"started"`
	Finished time.Time    `json:"finished,omitzero"`
	// Updated is when the job last wrote its progress: a running job
	// writes it at least every few seconds.
	Updated time.Time `json:"updated,omitzero"`
	// Total is how many events were stored when the job started; Scanned
	// how many it has read (Progress is their ratio), Matched how many
	// were in its time range.
	Total    int64   `json:"total"`
	Scanned  int64   `json:"scanned"`
	Matched  int64   `json:"matched"`
	Alerts   int     `json:"alerts"`
	Progress float64 `json:"progress"`
	Error    string  `json:"error,omitempty"`
}

// RetroJobSpec says what a retro-hunt runs over which stored events.
type RetroJobSpec struct {
	// RulesName names the Sigma rule set ("builtin", a file name; empty:
	// none).
	RulesName string `json:"rules,omitempty"`
	// Indicators are values (addresses, domains, hashes, user names, ...)
	// that any field of an event may hold.
	Indicators []string `json:"indicators,omitempty"`
	// IndicatorSource names where the indicators come from (a feed).
	IndicatorSource string `json:"indicator_source,omitempty"`
	// IntelCount is how many threat-intel indicators it matches.
	IntelCount int `json:"intel_indicators,omitempty"`
	// Since and Until bound the event times (zero: unbounded).
	Since time.Time `json:"since,omitzero"`
	Until time.Time `json:"until,omitzero"`
}

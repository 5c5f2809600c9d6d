package baseline

import (
	"github.com/vigil-iot/vigil"
)

// Idle connections: a TCP connection on which the client never sent data
// (no segment towards the server carried PSH) is what a slow DoS or a SYN
// flood is made of. It is counted once, for both ends: at the first
// periodic flow record that shows it open and idle for idleOpenAfter or
// more (the sensor writes one every flow interval while packets flow:
// keep-alives, the server's data), or else at the record that ends it
// (end, timeout, eviction, capture end). A partition remembers the flows
// it counted while open (maxIdleOpen), so that their end is not counted
// again.

// idleOpenAfter is how long a connection must have been open and idle for
// a periodic record to count it.
const idleOpenAfter = 60 // seconds

// maxIdleOpen bounds the flows a partition remembers as counted while
// open; past it the set starts again (a few connections may then be
// counted twice: at a periodic record and at their end).
const maxIdleOpen = 65536

// idle reports whether the flow record ev counts an idle connection now.
func (p *part) idle(ev *vigil.Event) bool {
	transport := ""
	if ev.Network != nil {
		transport = ev.Network.Transport
	}
	if !idleFlow(ev, transport) {
		return false
	}
	id, _ := ev.Fields["flow.id"].(string)
	reason, _ := ev.Fields["flow.reason"].(string)
	if reason != "periodic" {
		if id != "" && p.idleOpen != nil {
			h := nameHash(id)
			if _, ok := p.idleOpen[h]; ok {
				delete(p.idleOpen, h)
				return false // counted while it was open
			}
		}
		return true
	}
	// A periodic record: only a connection whose start the sensor saw
	// (a connection it joined midstream may have sent data before), open
	// long enough, counted once.
	if id == "" {
		return false
	}
	if m, _ := ev.Fields["flow.midstream"].(bool); m {
		return false
	}
	if dur, _ := ev.Fields["flow.duration"].(float64); dur < idleOpenAfter {
		return false
	}
	h := nameHash(id)
	if p.idleOpen == nil || len(p.idleOpen) >= maxIdleOpen {
		p.idleOpen = make(map[uint64]struct{})
	}
	if _, ok := p.idleOpen[h]; ok {
		return false
	}
	p.idleOpen[h] = struct{}{}
	return true
}

package threshold

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/detect"
)

var _ detect.Stateful = (*Detector)(nil)

// stateV1 is the checkpoint of one partition: the groups of each rule, by
// rule id, least recently updated first.
type stateV1 struct {
	V     int                     `json:"v"`
	Rules map[string][]groupState `json:"rules"`
}

type groupState struct {
	Key      string       `json:"k"`
	Device   string       `json:"d"`
	Values   []string     `json:"vals,omitempty"`
	Entries  []entryState `json:"e,omitempty"`
	Fired    bool         `json:"f,omitempty"`
	LastFire time.Time    `json:"lf,omitzero"`
	HasFired bool         `json:"hf,omitempty"`
}

type entryState struct {
	T    time.Time `json:"t"`
	ID   string    `json:"id,omitempty"`
	Prov string    `json:"p,omitempty"`
	Ents []string  `json:"n,omitempty"`
}

// SnapshotPartition returns the windows of every rule in partition part (JSON)
// when an event matched a rule there since the last SnapshotPartition or RestorePartition.
func (d *Detector) SnapshotPartition(part int) ([]byte, bool, error) {
	v, ok := d.parts.Load(part)
	if !ok {
		return nil, false, nil
	}
	p := v.(*partition)
	if !p.dirty {
		return nil, false, nil
	}
	p.dirty = false
	st := stateV1{V: 1, Rules: map[string][]groupState{}}
	for i, r := range d.rules {
		rs := &p.rules[i]
		if len(rs.groups) == 0 {
			continue
		}
		gs := make([]groupState, 0, len(rs.groups))
		for e := rs.lru.Back(); e != nil; e = e.Prev() {
			g := e.Value.(*group)
			s := groupState{Key: g.key, Device: g.device, Values: g.values, Fired: g.fired, LastFire: g.lastFire, HasFired: g.hasFired}
			for _, en := range g.entries {
				s.Entries = append(s.Entries, entryState{T: en.t, ID: en.id, Prov: en.prov, Ents: en.ents})
			}
			gs = append(gs, s)
		}
		st.Rules[r.ID] = gs
	}
	b, err := json.Marshal(st)
	if err != nil {
		return nil, false, fmt.Errorf("cannot encode threshold state: %w", err)
	}
	return b, true, nil
}

// RestorePartition replaces the windows of partition part with a Snapshot's; the
// groups of rules that no longer exist are dropped. Nil state empties it.
func (d *Detector) RestorePartition(part int, state []byte) error {
	d.DropPartition(part)
	if len(state) == 0 {
		return nil
	}
	var st stateV1
	if err := json.Unmarshal(state, &st); err != nil {
		return vigil.Errorf(vigil.EINVALID, "cannot read threshold state: %v", err)
	}
	if st.V != 1 {
		return vigil.Errorf(vigil.EINVALID, "cannot read threshold state version %d", st.V)
	}
	p := d.partition(part)
	for i, r := range d.rules {
		rs := &p.rules[i]
		gs := st.Rules[r.ID]
		if len(gs) > d.maxGroups {
			gs = gs[len(gs)-d.maxGroups:] // keep the most recently updated
		}
		for _, s := range gs {
			if rs.groups[s.Key] != nil {
				continue // a key twice: not a Snapshot's
			}
			g := &group{key: s.Key, device: s.Device, values: s.Values, fired: s.Fired, lastFire: s.LastFire, hasFired: s.HasFired}
			for _, en := range s.Entries {
				g.entries = append(g.entries, entry{t: en.T, id: en.ID, prov: en.Prov, ents: en.Ents})
			}
			g.elem = rs.lru.PushFront(g)
			rs.groups[g.key] = g
		}
	}
	return nil
}

// DropPartition forgets the windows of partition part.
func (d *Detector) DropPartition(part int) { d.parts.Delete(part) }

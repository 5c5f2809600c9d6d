package web

import (
	"fmt"
	"net/http"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/detect/reload"
)

// RuleManager is what the rule endpoints manage: the online detector's
// Sigma rules (detect/reload.Manager).
type RuleManager interface {
	// Rules lists the rules with their counters.
	Rules() []reload.RuleInfo
	// Last is the result of the latest load.
	Last() reload.Result
	// Reload compiles the rule sources again and swaps them in.
	Reload() reload.Result
	// SetEnabled enables or disables rules by id, name or tag, now and
	// across reloads, and returns how many it changed.
	SetEnabled(selector string, on bool) int
}

var _ RuleManager = (*reload.Manager)(nil)

// RuleList is the body of GET /api/v1/rules.
type RuleList struct {
	Items []reload.RuleInfo `json:"items"`
	Last  reload.Result     `json:"last_load"`
}

// RuleToggle is the body of POST /api/v1/rules/enable and /disable, and
// its answer.
type RuleToggle struct {
	Selector string `json:"selector"`
	Changed  int    `json:"changed"`
}

func (s *Server) listRules(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, RuleList{Items: s.opts.Rules.Rules(), Last: s.opts.Rules.Last()})
	return nil
}

func (s *Server) reloadRules(w http.ResponseWriter, r *http.Request) error {
	res := s.opts.Rules.Reload()
	s.audit(r, "rules.reload", "rules", fmt.Sprintf("compiled=%d rejected=%d", res.Compiled, len(res.Rejected)))
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) toggleRules(on bool) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		var t RuleToggle
		if err := decodeJSON(w, r, &t); err != nil {
			return err
		}
		if t.Selector == "" {
			return vigil.Errorf(vigil.EINVALID, "selector: a rule id, name or tag is required")
		}
		t.Changed = s.opts.Rules.SetEnabled(t.Selector, on)
		action := "rules.disable"
		if on {
			action = "rules.enable"
		}
		s.audit(r, action, "rules:"+t.Selector, fmt.Sprintf("changed=%d", t.Changed))
		if t.Changed == 0 {
			return vigil.Errorf(vigil.ENOTFOUND, "no rule has the id, name or tag %q", t.Selector)
		}
		writeJSON(w, http.StatusOK, t)
		return nil
	}
}

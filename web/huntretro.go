package web

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/auth"
	"github.com/vigil-iot/vigil/detect/sigma"
	"github.com/vigil-iot/vigil/hunt"
	"github.com/vigil-iot/vigil/web/api"
)

// maxRetroBody bounds a retro-hunt request (a rule file, an indicator
// list).
const maxRetroBody = 16 << 20

// RetroRequest is the body of POST /api/v1/retrohunt: what to run (the
// built-in Sigma pack with Rules "builtin", an uploaded Sigma rule file
// in RulesYAML, indicators, or several) over which stored events (Since,
// Until: RFC 3339, a date or relative to now as -7d; empty: unbounded).
type RetroRequest struct {
	Rules      string   `json:"rules,omitempty"`
	RulesYAML  string   `json:"rules_yaml,omitempty"`
	RulesName  string   `json:"rules_name,omitempty"`
	Indicators []string `json:"indicators,omitempty"`
	Since      string   `json:"since,omitempty"`
	Until      string   `json:"until,omitempty"`
}

// Retrohunt serves retro-hunt jobs.
type Retrohunt struct {
	Retro *hunt.Retro
	// Builtin returns the built-in Sigma pack.
	Builtin func() (*sigma.RuleSet, error)
	// Config maps Sigma fields (nil: the default mapping).
	Config *sigma.Config
	// Jobs is the context jobs run in (the server's, not the request's).
	Jobs  context.Context
	Clock vigil.Clock
}

// RetrohuntRoutes: POST /api/v1/retrohunt starts a job (write, audited as
// retrohunt.start); GET /api/v1/retrohunt lists the jobs and GET
// /api/v1/retrohunt/{id} shows one (read).
func RetrohuntRoutes(rh *Retrohunt) []Route {
	clock := rh.Clock
	if clock == nil {
		clock = vigil.SystemClock{}
	}
	handle := ErrorHandler(nil)
	p := api.Prefix + "/retrohunt"
	return []Route{
		{Method: "POST", Pattern: p, Perm: auth.PermWrite, Action: "retrohunt.start", Handler: handle(func(w http.ResponseWriter, r *http.Request) error {
			var in RetroRequest
			if err := decodeJSONLimit(w, r, &in, maxRetroBody); err != nil {
				return err
			}
			spec, err := rh.spec(in, clock.Now())
			if err != nil {
				return err
			}
			id, err := rh.Retro.Start(rh.Jobs, spec)
			if err != nil {
				return err
			}
			job, err := rh.Retro.Job(r.Context(), id)
			if err != nil {
				return err
			}
			writeJSON(w, http.StatusAccepted, job)
			return nil
		})},
		{Method: "GET", Pattern: p, Perm: auth.PermRead, Handler: handle(func(w http.ResponseWriter, r *http.Request) error {
			jobs, err := rh.Retro.Jobs(r.Context())
			if err != nil {
				return err
			}
			writeJSON(w, http.StatusOK, api.List[hunt.RetroJob]{Items: jobs})
			return nil
		})},
		{Method: "GET", Pattern: p + "/{id}", Perm: auth.PermRead, Handler: handle(func(w http.ResponseWriter, r *http.Request) error {
			job, err := rh.Retro.Job(r.Context(), r.PathValue("id"))
			if err != nil {
				return err
			}
			writeJSON(w, http.StatusOK, job)
			return nil
		})},
	}
}

// spec turns a request into a job's spec.
func (rh *Retrohunt) spec(in RetroRequest, now time.Time) (hunt.RetroSpec, error) {
	var spec hunt.RetroSpec
	switch {
	case in.Rules != "" && in.RulesYAML != "":
		return spec, vigil.Errorf(vigil.EINVALID, "give rules (builtin) or rules_yaml, not both")
	case in.Rules == "builtin":
		rs, err := rh.Builtin()
		if err != nil {
			return spec, err
		}
		spec.Rules, spec.RulesName = rs, "builtin"
	case in.Rules != "":
		return spec, vigil.Errorf(vigil.EINVALID, "rules %q: want builtin (or upload a rule file in rules_yaml)", in.Rules)
	case in.RulesYAML != "":
		name := in.RulesName
		if name == "" {
			name = "upload.yml"
		}
		rs, errs := sigma.LoadBytes(name, []byte(in.RulesYAML), rh.Config)
		if len(errs) > 0 {
			msgs := make([]string, len(errs))
			for i, e := range errs {
				msgs[i] = e.Error()
			}
			return spec, vigil.Errorf(vigil.EINVALID, "cannot load the rules: %s", strings.Join(msgs, "; "))
		}
		if rs.Compiled() == 0 {
			return spec, vigil.Errorf(vigil.EINVALID, "%s holds no rule", name)
		}
		spec.Rules, spec.RulesName = rs, name
	}
	spec.Indicators = in.Indicators
	var err error
	if spec.Since, err = retroTime("since", in.Since, now); err != nil {
		return spec, err
	}
	if spec.Until, err = retroTime("until", in.Until, now); err != nil {
		return spec, err
	}
	return spec, nil
}

func retroTime(name, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	q, err := hunt.Parse("earliest="+s, now)
	if err != nil {
		return time.Time{}, vigil.Errorf(vigil.EINVALID, "%s %q: want RFC 3339, a date, now or relative (-7d)", name, s)
	}
	return hunt.EarliestOf(q), nil
}

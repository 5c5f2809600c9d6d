package command

import (
	"bufio"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Refusal reasons.
const (
	ReasonMalformed    = "malformed"
	ReasonBadSignature = "bad_signature"
	ReasonWrongDevice  = "wrong_device"
	ReasonExpired      = "expired"
	ReasonReplayed     = "replayed"
	ReasonNotAllowed   = "not_allowed"
)

// Refusal is the error of a command that must not run.
type Refusal struct {
	Reason string
	Detail string
}

func (r *Refusal) Error() string { return "command refused: " + r.Reason + ": " + r.Detail }

func refuse(reason, format string, args ...any) *Refusal {
	return &Refusal{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

// DefaultMaxTTL bounds a command's lifetime (Expires - now).
const DefaultMaxTTL = 24 * time.Hour

// Verifier runs the verification pipeline.
type Verifier struct {
	Key      ed25519.PublicKey
	DeviceID string
	Policy   *Policy
	Replay   *ReplayCache
	// Now tells the time (default time.Now).
	Now func() time.Time
	// MaxTTL bounds how far in the future Expires may be (default 24h).
	MaxTTL time.Duration
}

// Verify returns the command when it may run, or a *Refusal. A command
// that passes is recorded in the replay cache before Verify returns, so
// it can never run twice.
func (v *Verifier) Verify(s Signed) (Command, error) {
	if len(v.Key) != ed25519.PublicKeySize {
		return Command{}, refuse(ReasonBadSignature, "no command key: the agent is not enrolled")
	}
	if len(s.Payload) == 0 || len(s.Signature) != ed25519.SignatureSize {
		return Command{}, refuse(ReasonMalformed, "missing payload or signature")
	}
	if !ed25519.Verify(v.Key, s.Payload, s.Signature) {
		var c Command
		_ = json.Unmarshal(s.Payload, &c)
		return c, refuse(ReasonBadSignature, "the signature does not verify with the server's command key")
	}
	var c Command
	if err := json.Unmarshal(s.Payload, &c); err != nil {
		return Command{}, refuse(ReasonMalformed, "cannot decode payload: %v", err)
	}
	if c.ID == "" || c.Action == "" || c.Nonce == "" || c.Expires.IsZero() {
		return c, refuse(ReasonMalformed, "id, action, nonce and expires are required")
	}
	if c.DeviceID != v.DeviceID {
		return c, refuse(ReasonWrongDevice, "command is for device %q, this is %q", c.DeviceID, v.DeviceID)
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	maxTTL := v.MaxTTL
	if maxTTL <= 0 {
		maxTTL = DefaultMaxTTL
	}
	if !now.Before(c.Expires) {
		return c, refuse(ReasonExpired, "expired at %s", c.Expires.UTC().Format(time.RFC3339))
	}
	if c.Expires.Sub(now) > maxTTL {
		return c, refuse(ReasonExpired, "expires %s, further than %s ahead", c.Expires.UTC().Format(time.RFC3339), maxTTL)
	}
	if v.Replay == nil {
		return c, refuse(ReasonReplayed, "no replay cache")
	}
	fresh, err := v.Replay.Add(c.Nonce, c.Expires, now)
	if err != nil {
		return c, refuse(ReasonReplayed, "cannot record nonce: %v", err)
	}
	if !fresh {
		return c, refuse(ReasonReplayed, "nonce %s was seen before", c.Nonce)
	}
	if err := v.Policy.Permits(c); err != nil {
		return c, refuse(ReasonNotAllowed, "%v", err)
	}
	return c, nil
}

// Policy is the device owner's local list of what the server may do. It
// is read from a JSON file:
//
//	{
//	  "allow": ["isolate", "restore", "kill_process", "restart_service", "stop_service", "shutdown"],
//	  "services": ["dropbear", "uhttpd"],
//	  "stop": {"uhttpd": "initd", "mosquitto": "systemd"},
//	  "shutdown": "halt",
//	  "params": ["log_level", "ntp_server"]
//	}
//
// allow lists the permitted actions; services, when not empty, restricts
// restart_service. stop_service takes a device's exposed service out of
// service, so it is refused for a service the policy does not name: in
// stop, which also says how it is stopped (StopSystemd: systemctl stop
// NAME; StopInitd: /etc/init.d/NAME stop; StopServiceCommand: the agent's
// configured service_command), or in services (stopped the way
// restart_service restarts). shutdown, when allowed, runs poweroff, or halt
// when shutdown says "halt" (the agent's shutdown_command, when set,
// replaces either). params lists the keys set_param may write (set_param
// with no params list is refused). A missing policy allows nothing. The
// server names only an action and a service: how anything runs is the
// device owner's choice, never a command line from the server.
type Policy struct {
	Allow    []string          `json:"allow"`
	Services []string          `json:"services,omitempty"`
	Stop     map[string]string `json:"stop,omitempty"`
	Shutdown string            `json:"shutdown,omitempty"`
	Params   []string          `json:"params,omitempty"`
}

// How stop_service stops a service named in Policy.Stop, and how shutdown
// takes the device down (Policy.Shutdown).
const (
	StopSystemd        = "systemd"
	StopInitd          = "initd"
	StopServiceCommand = "service_command"
	ShutdownPoweroff   = "poweroff"
	ShutdownHalt       = "halt"
)

// LoadPolicy reads a policy file.
func LoadPolicy(path string) (*Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read command policy: %w", err)
	}
	var p Policy
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("cannot read command policy %s: %w", path, err)
	}
	for _, a := range p.Allow {
		if !slices.Contains(Actions, a) {
			return nil, fmt.Errorf("cannot read command policy %s: unknown action %q", path, a)
		}
	}
	if err := p.check(); err != nil {
		return nil, fmt.Errorf("cannot read command policy %s: %w", path, err)
	}
	return &p, nil
}

// Permits returns nil when the policy allows c.
func (p *Policy) Permits(c Command) error {
	if p == nil {
		return errors.New("no policy file: every action is refused")
	}
	if !slices.Contains(p.Allow, c.Action) {
		return fmt.Errorf("action %q is not in the policy's allow list", c.Action)
	}
	switch c.Action {
	case ActionStopService:
		svc := c.Params["service"]
		if _, ok := p.Stop[svc]; !ok && !slices.Contains(p.Services, svc) {
			return fmt.Errorf("service %q is named neither in the policy's stop nor in its services", svc)
		}
	case ActionRestartService:
		if len(p.Services) > 0 && !slices.Contains(p.Services, c.Params["service"]) {
			return fmt.Errorf("service %q is not in the policy's services", c.Params["service"])
		}
	case ActionSetParam:
		if !slices.Contains(p.Params, c.Params["key"]) {
			return fmt.Errorf("parameter %q is not in the policy's params", c.Params["key"])
		}
	}
	return nil
}

// check validates the stop methods and the shutdown mode.
func (p *Policy) check() error {
	for svc, how := range p.Stop {
		if !validService(svc) {
			return fmt.Errorf("stop: invalid service name %q", svc)
		}
		switch how {
		case StopSystemd, StopInitd, StopServiceCommand:
		default:
			return fmt.Errorf("stop: service %s: unknown method %q: want %s, %s or %s", svc, how, StopSystemd, StopInitd, StopServiceCommand)
		}
	}
	switch p.Shutdown {
	case "", ShutdownPoweroff, ShutdownHalt:
	default:
		return fmt.Errorf("shutdown: unknown mode %q: want %s or %s", p.Shutdown, ShutdownPoweroff, ShutdownHalt)
	}
	return nil
}

// ReplayCache remembers the nonces of accepted commands until a day
// after they expire, in a file of "nonce unix-expiry" lines, so a restart does not
// forget them. It is safe for concurrent use.
type ReplayCache struct {
	path string
	mu   sync.Mutex
	seen map[string]int64
	f    *os.File
}

// OpenReplayCache loads the cache file, creating it when missing. now is
// the clock that judges which entries have lapsed: it must be the clock of
// the Verifier that uses the cache (nil means time.Now), or a test with a
// fixed date would see its entries pruned by the wall clock.
func OpenReplayCache(path string, now func() time.Time) (*ReplayCache, error) {
	if now == nil {
		now = time.Now
	}
	rc := &ReplayCache{path: path, seen: map[string]int64{}}
	if f, err := os.Open(path); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			n, exp, ok := strings.Cut(sc.Text(), " ")
			if !ok {
				continue
			}
			e, err := strconv.ParseInt(exp, 10, 64)
			if err != nil {
				continue
			}
			rc.seen[n] = e
		}
		f.Close()
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("cannot read replay cache: %w", err)
	}
	if err := rc.rewrite(now()); err != nil {
		return nil, err
	}
	return rc, nil
}

// rewrite writes the live entries to a fresh file and opens it for append.
func (rc *ReplayCache) rewrite(now time.Time) error {
	var b strings.Builder
	for n, e := range rc.seen {
		if e < now.Unix() {
			delete(rc.seen, n)
			continue
		}
		fmt.Fprintf(&b, "%s %d\n", n, e)
	}
	tmp := rc.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("cannot write replay cache: %w", err)
	}
	if err := os.Rename(tmp, rc.path); err != nil {
		return fmt.Errorf("cannot write replay cache: %w", err)
	}
	if rc.f != nil {
		rc.f.Close()
	}
	f, err := os.OpenFile(rc.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("cannot open replay cache: %w", err)
	}
	rc.f = f
	return nil
}

// Add records a nonce until expires and reports whether it was new. The
// record is on disk (fsync) before Add returns true.
func (rc *ReplayCache) Add(nonce string, expires, now time.Time) (bool, error) {
	if strings.ContainsAny(nonce, " \n\r") || len(nonce) > 256 {
		return false, fmt.Errorf("invalid nonce %q", nonce)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if _, ok := rc.seen[nonce]; ok {
		return false, nil
	}
	// Keep entries DefaultMaxTTL past expiry: a device clock stepped back
	// (no RTC before NTP, a correction) must not make an expired, forgotten
	// command look fresh again; Verify refuses expiries further ahead than
	// MaxTTL, so a step back of less than that stays covered.
	exp := expires.Add(DefaultMaxTTL).Unix()
	if _, err := fmt.Fprintf(rc.f, "%s %d\n", nonce, exp); err != nil {
		return false, fmt.Errorf("cannot write replay cache: %w", err)
	}
	if err := rc.f.Sync(); err != nil {
		return false, fmt.Errorf("cannot write replay cache: %w", err)
	}
	rc.seen[nonce] = exp
	if len(rc.seen) > 1024 && len(rc.seen)%1024 == 0 {
		_ = rc.rewrite(now)
	}
	return true, nil
}

// Close closes the file.
func (rc *ReplayCache) Close() error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.f == nil {
		return nil
	}
	err := rc.f.Close()
	rc.f = nil
	return err
}

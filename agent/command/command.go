package command

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Actions.
const (
	ActionIsolate        = "isolate"
	ActionRestore        = "restore"
	ActionKillProcess    = "kill_process"
	ActionStopService    = "stop_service"
	ActionRestartService = "restart_service"
	ActionUpdate         = "update"
	ActionSetParam       = "set_param"
	ActionReboot         = "reboot"
	ActionBlock          = "block"
	ActionUnblock        = "unblock"
	ActionShutdown       = "shutdown"
	ActionRollback       = "rollback"
)

// Actions lists every action an agent knows.
var Actions = []string{ActionIsolate, ActionRestore, ActionKillProcess, ActionStopService,
	ActionRestartService, ActionUpdate, ActionSetParam, ActionReboot, ActionBlock, ActionUnblock, ActionShutdown, ActionRollback}

// Command is what the server asks one device to do. Params by action:
//
//	isolate          (none; the server's addresses stay reachable)
//	restore          (none)
//	kill_process     pid, and optionally name (the process's comm must match)
//	stop_service     service (the policy must name it; see Policy.Stop)
//	restart_service  service
//	update           url (path on the server), sha256 (hex), signature
//	                 (base64 Ed25519 signature of the artifact by the
//	                 update key), version, product
//	rollback         product (back to the version before its last update),
//	                 optionally version (that version, for an installer
//	                 that restores without a kept artifact)
//	set_param        key, value
//	reboot           (none)
//	shutdown         (none; powers off or halts as the policy says)
//	block            addr (IP address or prefix), optionally port and
//	                 proto (tcp, udp), timeout_s (seconds, default 3600,
//	                 at most 86400); see ParseBlock
//	unblock          addr, optionally port and proto
type Command struct {
	ID       string            `json:"id"`
	DeviceID string            `json:"device_id"`
	Action   string            `json:"action"`
	Params   map[string]string `json:"params,omitempty"`
	Issued   time.Time         `json:"issued"`
	Expires  time.Time         `json:"expires"`
	Nonce    string            `json:"nonce"`
}

// Signed is a command as it travels: the exact JSON bytes of the Command
// and the Ed25519 signature over them. Signing the bytes, not a
// re-encoding, leaves nothing to canonicalise.
type Signed struct {
	Payload   []byte `json:"payload"`
	Signature []byte `json:"signature"`
}

// Sign encodes c, filling an empty Nonce with 16 random bytes, and signs it.
func Sign(key ed25519.PrivateKey, c Command) (Signed, error) {
	if len(key) != ed25519.PrivateKeySize {
		return Signed{}, errors.New("cannot sign command: not an Ed25519 private key")
	}
	if c.Nonce == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return Signed{}, fmt.Errorf("cannot sign command: %w", err)
		}
		c.Nonce = hex.EncodeToString(b[:])
	}
	p, err := json.Marshal(c)
	if err != nil {
		return Signed{}, fmt.Errorf("cannot sign command: %w", err)
	}
	return Signed{Payload: p, Signature: ed25519.Sign(key, p)}, nil
}

// Statuses of a Result.
const (
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusRefused   = "refused"
)

// Result is what the agent reports back about one command.
type Result struct {
	// CommandID is the command's id; empty when a refused command could not
	// be read.
	CommandID string `json:"command_id"`
	DeviceID  string `json:"device_id,omitempty"`
	Action    string `json:"action,omitempty"`
	Status    string `json:"status"`
	// Reason is the refusal reason (bad_signature, malformed, wrong_device,
	// expired, replayed, not_allowed) when Status is refused.
	Reason   string    `json:"reason,omitempty"`
	Output   string    `json:"output,omitempty"`
	Error    string    `json:"error,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
}

// Poll is the answer of GET /api/v1/agent/commands.
type Poll struct {
	Commands []Signed `json:"commands"`
}

package agent

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/agent/command"
)

// runLog records the programs the real command.System would run.
type runLog struct {
	mu   sync.Mutex
	argv []string
}

func (r *runLog) run(_ context.Context, argv []string, _ string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.argv = append(r.argv, strings.Join(argv, " "))
	return "", nil
}

func (r *runLog) String() string { r.mu.Lock(); defer r.mu.Unlock(); return strings.Join(r.argv, "; ") }

// TestShutDownOnBreach sends real signed stop_service and shutdown
// commands through the enroll handler to agents whose policies differ: the
// command.System executor (its programs recorded, not run) runs them the
// way the policy says, and only when the policy allows them.
func TestShutDownOnBreach(t *testing.T) {
	s := newServer(t)
	type cmd struct {
		action, service string
		status, reason  string
	}
	cases := []struct {
		name   string
		policy string
		cmds   []cmd
		want   string
	}{
		{"camera: stop by init script, halt",
			`{"allow":["stop_service","shutdown"],"stop":{"rtsp-server":"initd","uhttpd":"systemd"},"shutdown":"halt"}`,
			[]cmd{{"stop_service", "rtsp-server", "succeeded", ""}, {"stop_service", "uhttpd", "succeeded", ""},
				{"stop_service", "dropbear", "refused", command.ReasonNotAllowed}, {"shutdown", "", "succeeded", ""}},
			"/etc/init.d/rtsp-server stop; systemctl stop uhttpd; halt"},
		{"gateway: services list, poweroff by default",
			`{"allow":["stop_service","shutdown"],"services":["mosquitto"]}`,
			[]cmd{{"stop_service", "mosquitto", "succeeded", ""}, {"shutdown", "", "succeeded", ""}},
			"/usr/sbin/svc stop mosquitto; poweroff"},
		{"plc: shutdown not allowed, no service named",
			`{"allow":["isolate","stop_service"]}`,
			[]cmd{{"shutdown", "", "refused", command.ReasonNotAllowed}, {"stop_service", "modbusd", "refused", command.ReasonNotAllowed}},
			""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			state := s.enroll(t)
			policy := filepath.Join(state, "policy.json")
			writeFileAtomic(policy, []byte(tc.policy), 0o600)
			log := &runLog{}
			sys := &command.System{ServiceCommand: []string{"/usr/sbin/svc", "{action}", "{service}"}, Run: log.run}
			a, err := New(Config{StateDir: state, Commands: true, PolicyFile: policy}, Options{Executor: sys, Now: time.Now})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			for _, c := range tc.cmds {
				var p map[string]string
				if c.service != "" {
					p = map[string]string{"service": c.service}
				}
				sent, err := s.h.Send(a.DeviceID(), c.action, p, time.Minute)
				if err != nil {
					t.Fatal(err)
				}
				if err := a.PollCommands(context.Background()); err != nil {
					t.Fatal(err)
				}
				_, res, ok := s.h.Result(sent.ID)
				if !ok || res.Status != c.status || res.Reason != c.reason {
					t.Errorf("%s %s: result %+v (ok %v), want %s %s", c.action, c.service, res, ok, c.status, c.reason)
				}
			}
			if got := log.String(); got != tc.want {
				t.Errorf("ran %q, want %q", got, tc.want)
			}
		})
	}
}

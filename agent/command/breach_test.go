package command

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPolicyStopAndShutdown(t *testing.T) {
	dir := t.TempDir()
	load := func(body string) (*Policy, error) {
		p := filepath.Join(dir, "policy.json")
		os.WriteFile(p, []byte(body), 0o600)
		return LoadPolicy(p)
	}
	for body, want := range map[string]string{
		`{"allow":["stop_service"],"stop":{"uhttpd":"kill -9"}}`:   `unknown method "kill -9"`,
		`{"allow":["stop_service"],"stop":{"../x":"initd"}}`:       `invalid service name "../x"`,
		`{"allow":["shutdown"],"shutdown":"reboot"}`:               `unknown mode "reboot"`,
		`{"allow":["shutdown"],"shutdown_command":["/bin/false"]}`: `unknown field`,
	} {
		if _, err := load(body); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", body, err, want)
		}
	}
	pol, err := load(`{"allow":["stop_service","restart_service"],"stop":{"uhttpd":"initd"},"services":["dropbear"]}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		action, service string
		ok              bool
	}{
		{ActionStopService, "uhttpd", true},
		{ActionStopService, "dropbear", true},
		{ActionStopService, "sshd", false},
		{ActionStopService, "", false},
		{ActionRestartService, "dropbear", true},
		{ActionRestartService, "uhttpd", false},
		{ActionShutdown, "", false},
	} {
		err := pol.Permits(Command{Action: tc.action, Params: map[string]string{"service": tc.service}})
		if (err == nil) != tc.ok {
			t.Errorf("%s %q: permitted %v, want %v (%v)", tc.action, tc.service, err == nil, tc.ok, err)
		}
	}
	// No services named: stop_service is refused (restart_service is not).
	pol = &Policy{Allow: []string{ActionStopService, ActionRestartService}}
	if pol.Permits(Command{Action: ActionStopService, Params: map[string]string{"service": "x"}}) == nil {
		t.Error("stop_service permitted with no service named")
	}
	if err := pol.Permits(Command{Action: ActionRestartService, Params: map[string]string{"service": "x"}}); err != nil {
		t.Error(err)
	}
}

func TestStopAndShutdownExecutor(t *testing.T) {
	ctx := context.Background()
	r := &recorder{}
	s := &System{Run: r.run, Policy: &Policy{Allow: []string{ActionStopService}, Stop: map[string]string{"a": StopSystemd, "b": StopInitd, "c": StopServiceCommand}}}
	for _, svc := range []string{"a", "b"} {
		if _, err := s.Execute(ctx, Command{Action: ActionStopService, Params: map[string]string{"service": svc}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Execute(ctx, Command{Action: ActionStopService, Params: map[string]string{"service": "c"}}); err == nil || !strings.Contains(err.Error(), "service_command") {
		t.Fatalf("service_command without one configured: %v", err)
	}
	s.ServiceCommand = []string{"/sbin/svc", "-{action}", "{service}"}
	if _, err := s.Execute(ctx, Command{Action: ActionStopService, Params: map[string]string{"service": "c"}}); err != nil {
		t.Fatal(err)
	}
	// The policy does not allow shutdown: the executor refuses it as well.
	if _, err := s.Execute(ctx, Command{Action: ActionShutdown}); err == nil {
		t.Fatal("shut down without the policy allowing it")
	}
	if _, err := (&System{Run: r.run}).Execute(ctx, Command{Action: ActionShutdown}); err == nil {
		t.Fatal("shut down with no policy")
	}
	s.Policy.Allow = append(s.Policy.Allow, ActionShutdown)
	s.Execute(ctx, Command{Action: ActionShutdown})
	s.Policy.Shutdown = ShutdownHalt
	s.Execute(ctx, Command{Action: ActionShutdown})
	s.ShutdownCommand = []string{"/usr/bin/vendor-poweroff", "--now"}
	s.Execute(ctx, Command{Action: ActionShutdown})
	want := "systemctl stop a|,/etc/init.d/b stop|,/sbin/svc -stop c|,poweroff|,halt|,/usr/bin/vendor-poweroff --now|"
	if got := strings.Join(r.calls, ","); got != want {
		t.Fatalf("ran\n%s\nwant\n%s", got, want)
	}
}

// TestShutdownDelayed: with a delay, shutdown answers first (so the
// result can reach the server) and runs its command afterwards.
func TestShutdownDelayed(t *testing.T) {
	ran := make(chan string, 1)
	answered := make(chan struct{})
	s := &System{ShutdownDelay: time.Millisecond, Policy: &Policy{Allow: []string{ActionShutdown}, Shutdown: ShutdownHalt},
		Run: func(_ context.Context, argv []string, _ string) (string, error) {
			<-answered // never before Execute returned
			ran <- strings.Join(argv, " ")
			return "", nil
		}}
	out, err := s.Execute(context.Background(), Command{Action: ActionShutdown})
	close(answered)
	if err != nil || !strings.Contains(out, "shutting down in 1ms (halt)") {
		t.Fatalf("%q %v", out, err)
	}
	if got := <-ran; got != "halt" {
		t.Fatalf("ran %q", got)
	}
}

package node

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/agent/command"
)

// The addresses of TestIsolateInNetworkNamespace: the server and a test
// host share the root namespace's end of a veth pair, the device is at the
// other end in a namespace of its own.
const (
	nsServerIP = "10.213.9.1"
	nsDeviceIP = "10.213.9.2"
	nsHostIP   = "10.213.9.3"
)

// TestIsolateNSListenerHelper is not a test: TestIsolateInNetworkNamespace
// runs it, inside the device's network namespace, as the device's service.
// It listens on VIGIL_NS_LISTEN, prints "LISTEN <addr>", accepts and
// closes connections, and exits when its stdin closes.
func TestIsolateNSListenerHelper(t *testing.T) {
	addr := os.Getenv("VIGIL_NS_LISTEN")
	if addr == "" {
		t.Skip("helper process of TestIsolateInNetworkNamespace (runs only with VIGIL_NS_LISTEN set)")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("LISTEN", ln.Addr())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			os.Exit(1)
		}
		c.Close()
	}
}

// lockedBuffer collects a process's output for failure messages.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestIsolateInNetworkNamespace is the end-to-end test of isolation: the
// real server listens on the root namespace's end of a veth pair, the real
// vigil-agent enrolls and runs inside a device namespace with the real
// nftables executors, next to a TCP service. A signed isolate cuts the
// service off from a test host while the agent keeps talking to the server
// (a later command's result still arrives); restore gives the service back.
// Then the response engine's agent connector blocks and unblocks the test
// host's address on the device, as on a gateway.
func TestIsolateInNetworkNamespace(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agent binary; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs the %s tool (iproute2, nftables)", tool)
		}
	}
	if out, _ := exec.Command("ip", "-o", "addr", "show", "to", "10.213.9.0/24").CombinedOutput(); len(strings.TrimSpace(string(out))) > 0 {
		t.Skipf("10.213.9.0/24 is already in use here (another run of this test?):\n%s", out)
	}
	var rnd [4]byte
	rand.Read(rnd[:])
	suffix := hex.EncodeToString(rnd[:])
	ns := "vigil-dev-" + suffix
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace here: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	hostIf, devIf := "vgs"+suffix[:6], "vgd"+suffix[:6]
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	sh("ip", "link", "add", hostIf, "type", "veth", "peer", "name", devIf, "netns", ns)
	t.Cleanup(func() { exec.Command("ip", "link", "del", hostIf).Run() }) // gone with the namespace, unless that failed
	sh("ip", "addr", "add", nsServerIP+"/24", "dev", hostIf)
	sh("ip", "addr", "add", nsHostIP+"/24", "dev", hostIf)
	sh("ip", "link", "set", hostIf, "up")
	sh("ip", "-n", ns, "addr", "add", nsDeviceIP+"/24", "dev", devIf)
	sh("ip", "-n", ns, "link", "set", "lo", "up")
	sh("ip", "-n", ns, "link", "set", devIf, "up")

	// The server, on the veth address, with a certificate that covers it.
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Listen, cfg.LogLevel = t.TempDir(), nsServerIP+":0", "warn"
	cfg.Hosts = append(cfg.Hosts, nsServerIP)
	cfg.SigmaDirs = []string{t.TempDir()}
	a := runTestApp(t, cfg)
	if !strings.Contains(a.URL(), nsServerIP) {
		t.Fatalf("server URL %s is not on %s", a.URL(), nsServerIP)
	}

	// The device's service.
	helper := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestIsolateNSListenerHelper$")
	helper.Env = append(os.Environ(), "VIGIL_NS_LISTEN="+nsDeviceIP+":0")
	helperIn, err := helper.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	helperOut, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { helperIn.Close(); helper.Process.Kill(); helper.Wait() })
	sc := bufio.NewScanner(helperOut)
	var svc string
	for svc == "" && sc.Scan() {
		if s, ok := strings.CutPrefix(sc.Text(), "LISTEN "); ok {
			svc = s
		}
	}
	if svc == "" {
		t.Fatal("the listener helper did not start in the device namespace")
	}
	go io.Copy(io.Discard, helperOut)
	reach := func(from string) bool {
		d := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", svc)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	if !reach(nsHostIP) {
		t.Fatalf("the test host cannot reach the device's service %s before isolation", svc)
	}

	// The real agent, enrolled and running inside the device namespace.
	bin := filepath.Join(t.TempDir(), "vigil-agent")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/vigil-agent").CombinedOutput(); err != nil {
		t.Fatalf("cannot build vigil-agent: %v\n%s", err, out)
	}
	out, _, err := a.enrollFiles.Tokens.Create("camera", 10*time.Minute)
	if err != nil {
		t.Fatalf("enroll-token create: %v", err)
	}
	state := t.TempDir()
	ca := filepath.Join(a.cfg.DataDir, "pki", "ca.crt")
	enrollOut, err := exec.Command("ip", "netns", "exec", ns, bin, "enroll", "--server", a.URL(), "--token", strings.TrimSpace(out), "--state", state, "--ca", ca).CombinedOutput()
	if err != nil {
		t.Fatalf("enroll in %s: %v\n%s", ns, err, enrollOut)
	}
	m := regexp.MustCompile(`enrolled as (\S+);`).FindStringSubmatch(string(enrollOut))
	if m == nil {
		t.Fatalf("enroll did not say the device id:\n%s", enrollOut)
	}
	dev := m[1]
	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.json")
	if err := os.WriteFile(policy, []byte(`{"allow": ["isolate", "restore", "block", "unblock"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	acfg, _ := json.Marshal(map[string]any{"server": a.URL(), "state_dir": state, "interval": "60s", "commands": true,
		"policy_file": policy, "poll_wait": "5s", "firewall": "nft", "reboot_command": []string{"true"},
		"class": "camera", "disable": []string{"processes", "authlog", "fim"}})
	cfgFile := filepath.Join(dir, "agent.json")
	if err := os.WriteFile(cfgFile, acfg, 0o600); err != nil {
		t.Fatal(err)
	}
	var agentLog lockedBuffer
	agent := exec.Command("ip", "netns", "exec", ns, bin, "run", "--config", cfgFile)
	agent.Stdout, agent.Stderr = &agentLog, &agentLog
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })

	send := func(action string) command.Result {
		t.Helper()
		c, err := a.enroll.Send(dev, action, nil, 2*time.Minute)
		if err != nil {
			t.Fatalf("send %s: %v", action, err)
		}
		var res command.Result
		waitFor(t, action+" acknowledged by the agent", func() (bool, string) {
			_, r, ok := a.enroll.Result(c.ID)
			res = r
			return ok, "no result yet; agent output:\n" + agentLog.String()
		})
		return res
	}

	if r := send(command.ActionIsolate); r.Status != command.StatusSucceeded {
		t.Fatalf("isolate: %+v\nagent output:\n%s", r, agentLog.String())
	}
	if reach(nsHostIP) {
		t.Fatal("the test host still reaches the isolated device's service")
	}
	if !reach(nsServerIP) {
		t.Fatal("the Vigil server's address lost the isolated device")
	}
	// The agent still polls and answers while isolated: a command the
	// policy refuses comes back refused.
	if r := send(command.ActionReboot); r.Status != command.StatusRefused || r.Reason != command.ReasonNotAllowed {
		t.Fatalf("reboot while isolated: %+v, want refused not_allowed", r)
	}
	if reach(nsHostIP) {
		t.Fatal("the isolation ended before restore")
	}

	if r := send(command.ActionRestore); r.Status != command.StatusSucceeded {
		t.Fatalf("restore: %+v\nagent output:\n%s", r, agentLog.String())
	}
	if !reach(nsHostIP) {
		t.Fatal("the test host cannot reach the device's service after restore")
	}

	// The device as a gateway: the response engine's agent connector
	// blocks the test host's address (an element with a timeout in the
	// agent's nftables set), then unblocks it with the params a rollback
	// sends (the block's own).
	act := func(typ string, params map[string]string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		res, err := a.respond.agent.Execute(ctx, vigil.Action{ID: "e2e-" + typ, Type: typ, DeviceID: dev, Params: params})
		if err != nil || res.Acknowledged.IsZero() {
			t.Fatalf("%s: %+v %v\nagent output:\n%s", typ, res, err, agentLog.String())
		}
	}
	act("block", map[string]string{"addr": nsHostIP, "timeout": "10m"})
	if reach(nsHostIP) {
		t.Fatal("the blocked test host still reaches the device's service")
	}
	if !reach(nsServerIP) {
		t.Fatal("an address that is not blocked lost the device's service")
	}
	act("unblock", map[string]string{"addr": nsHostIP, "timeout": "10m"})
	if !reach(nsHostIP) {
		t.Fatal("the test host cannot reach the device's service after unblock")
	}
}

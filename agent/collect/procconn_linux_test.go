package collect

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-iot/vigil/wire"
)

// TestProcessConnectorSeesShortLivedProcesses runs processes that end
// long before the next collection: polling cannot see them, the kernel's
// process connector does, with the command line of one that lived 300 ms
// and at least the pid of one that lived a moment.
func TestProcessConnectorSeesShortLivedProcesses(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the proc connector needs root (CAP_NET_ADMIN)")
	}
	p := &Processes{Connector: true}
	defer p.Close()
	var r wire.Report
	if err := p.Collect(context.Background(), &r); err != nil {
		t.Fatal(err)
	}
	if p.Source() != "proc connector" {
		t.Skipf("no proc connector here: %s", p.Source())
	}
	sleep := exec.Command("/bin/sleep", "0.3")
	if err := sleep.Run(); err != nil {
		t.Fatal(err)
	}
	quick := exec.Command("/bin/true", "vigil-"+strconv.Itoa(os.Getpid()))
	if err := quick.Run(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the reader handles the last events
	r = wire.Report{}
	if err := p.Collect(context.Background(), &r); err != nil {
		t.Fatal(err)
	}
	find := func(pid int) *wire.SecurityEvent {
		for i, e := range r.Events {
			if e.Fields["process.pid"] == strconv.Itoa(pid) {
				return &r.Events[i]
			}
		}
		t.Fatalf("no event for pid %d among %d events", pid, len(r.Events))
		return nil
	}
	e := find(sleep.Process.Pid)
	if e.Action != "exec" || e.Kind != KindProcess || e.Fields["process.command_line"] != "/bin/sleep 0.3" ||
		e.Fields["process.parent.pid"] != strconv.Itoa(os.Getpid()) || e.Fields["user.id"] != strconv.Itoa(os.Getuid()) {
		t.Errorf("sleep 0.3: %+v", e.Fields)
	}
	// /bin/true may be gone before /proc could be read: its exec is
	// reported anyway, described as far as it could be.
	e = find(quick.Process.Pid)
	if pp, ok := e.Fields["process.parent.pid"]; ok && pp != strconv.Itoa(os.Getpid()) {
		t.Errorf("true: %+v", e.Fields)
	}
	t.Logf("true (a moment): %v", e.Fields)

	// The connector's socket fails: the next collection says so and
	// polling takes over from a new baseline.
	p.conn.f.Close()
	<-p.conn.done
	// Linux 6.6 and later filter: execs only.
	var u syscall.Utsname
	syscall.Uname(&u)
	var rel []byte
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		rel = append(rel, byte(c))
	}
	var major, minor int
	fmt.Sscanf(string(rel), "%d.%d", &major, &minor)
	t.Logf("Linux %s: %d events other than exec received", rel, p.conn.others)
	if (major > 6 || major == 6 && minor >= 6) && p.conn.others > 0 {
		t.Errorf("Linux %s filters events, yet %d forks or exits came", rel, p.conn.others)
	}
	r = wire.Report{}
	if err := p.Collect(context.Background(), &r); err == nil || !strings.Contains(err.Error(), "polling /proc") {
		t.Fatalf("after the connector stopped: %v", err)
	}
	if !strings.HasPrefix(p.Source(), "/proc polling (") {
		t.Fatalf("source %q", p.Source())
	}
	long := exec.Command("/bin/sleep", "30")
	if err := long.Start(); err != nil {
		t.Fatal(err)
	}
	defer long.Process.Kill()
	r = wire.Report{}
	if err := p.Collect(context.Background(), &r); err != nil {
		t.Fatal(err)
	}
	if e := find(long.Process.Pid); e.Fields["process.command_line"] != "/bin/sleep 30" {
		t.Errorf("polled: %+v", e.Fields)
	}
}

func TestEachProcEventSkipsForeignAndShortMessages(t *testing.T) {
	ne := binary.NativeEndian
	msg := func(idx uint32, what uint32, data ...uint32) []byte {
		ev := make([]byte, procHdrLen+4*len(data))
		ne.PutUint32(ev, what)
		for i, d := range data {
			ne.PutUint32(ev[procHdrLen+4*i:], d)
		}
		b := make([]byte, nlmsgHdrLen+cnMsgLen+len(ev))
		ne.PutUint32(b, uint32(len(b)))
		ne.PutUint32(b[nlmsgHdrLen:], idx)
		ne.PutUint32(b[nlmsgHdrLen+4:], cnValProc)
		ne.PutUint16(b[nlmsgHdrLen+16:], uint16(len(ev)))
		copy(b[nlmsgHdrLen+cnMsgLen:], ev)
		return b
	}
	var got []uint32
	b := append(msg(cnIdxProc, procEventExec, 42, 42), msg(7, procEventExec, 1, 1)...)
	b = append(b, msg(cnIdxProc, procEventFork, 1, 1, 43, 43)...)
	b = append(b, 0, 0, 0) // a torn tail
	eachProcEvent(b, func(_, _, what uint32, d []byte) { got = append(got, what, ne.Uint32(d[len(d)-4:])) })
	if len(got) != 4 || got[0] != procEventExec || got[1] != 42 || got[2] != procEventFork || got[3] != 43 {
		t.Fatalf("got %v", got)
	}
}

func FuzzEachProcEvent(f *testing.F) {
	f.Add(listenMsg(1, false))
	f.Add(listenMsg(2, true))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		eachProcEvent(b, func(_, _, _ uint32, _ []byte) {})
	})
}

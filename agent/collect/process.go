package collect

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-iot/vigil/wire"
)

// Processes emits a process/start event (ECS action "exec") for every
// process started since the previous call.
//
// With Connector set, on the real /proc (Env.Root empty) and when the
// kernel lets the agent listen (initial user and PID namespaces;
// CAP_NET_ADMIN before Linux 6.6), the events come from the kernel's
// process connector (netlink): every exec is seen, and the process is
// described at once, so a process that lives a few milliseconds is
// usually reported with its command line (when it is gone before it could
// be read, with its pid, and its parent when known).
// Otherwise, and if the connector stops, Processes polls /proc: the first
// call only records what runs, and processes that start and end between
// two calls are not seen.
type Processes struct {
	Env Env
	// Connector asks for the kernel's process events; polling is the
	// fallback.
	Connector bool

	seen  map[int]uint64 // pid → start time (clock ticks), to notice reuse
	users map[string]string
	proc  procReader

	conn      *procConnector
	connTried bool
	connErr   error // why the connector is not used
}

// Name returns "processes".
func (p *Processes) Name() string { return "processes" }

// Source tells where process events come from: "proc connector", or
// "/proc polling" and why the connector is not used.
func (p *Processes) Source() string {
	if p.conn != nil {
		return "proc connector"
	}
	if p.connErr != nil {
		return "/proc polling (" + p.connErr.Error() + ")"
	}
	return "/proc polling"
}

// Close stops listening to the process connector.
func (p *Processes) Close() error {
	if p.conn != nil {
		err := p.conn.Close()
		p.conn = nil
		return err
	}
	return nil
}

// Collect adds an event per new process.
func (p *Processes) Collect(ctx context.Context, r *wire.Report) error {
	if p.Connector && !p.connTried && p.Env.path("/") == "/" {
		p.connTried = true
		p.conn, p.connErr = openProcConnector(p.Env)
	}
	if p.conn != nil {
		return p.collectConnector(r)
	}
	return p.poll(r)
}

// collectConnector turns the execs the connector saw since the previous
// call into events. When the connector stopped, it falls back to polling
// (from a new baseline) and says so.
func (p *Processes) collectConnector(r *wire.Report) error {
	execs, dropped, err := p.conn.drain()
	for _, x := range execs {
		r.Events = append(r.Events, p.event(x))
	}
	if dropped > 0 {
		r.Events = append(r.Events, newEvent(p.Env.now(), KindSystem, "host", "agent_process_events_dropped", "failure", "medium",
			wire.Fields{"agent.process_events.dropped": strconv.Itoa(dropped)}))
	}
	if err != nil {
		p.conn.Close()
		p.conn, p.connErr, p.seen = nil, err, nil
		_ = p.poll(&wire.Report{}) // the polling baseline
		return fmt.Errorf("process connector stopped, polling /proc from now on: %w", err)
	}
	return nil
}

// poll compares /proc with the previous call.
func (p *Processes) poll(r *wire.Report) error {
	pids, err := listPIDs(p.Env)
	if err != nil {
		return err
	}
	first := p.seen == nil
	next := make(map[int]uint64, len(pids))
	now := p.Env.now()
	for _, pid := range pids {
		start, ppid, ok := p.proc.stat(p.Env, pid)
		if !ok {
			continue // gone already
		}
		if first {
			next[pid] = start
			continue
		}
		if old, ok := p.seen[pid]; ok && old == start {
			next[pid] = start
			continue
		}
		if ppid == 2 || pid == 2 { // kernel threads
			next[pid] = start
			continue
		}
		x, ok := p.proc.exec(p.Env, now, pid, ppid)
		if !ok || !x.hasCmdline {
			// Caught between fork and exec: its command line is not
			// readable yet. Left unseen, it is reported by the next poll.
			continue
		}
		next[pid] = start
		r.Events = append(r.Events, p.event(x))
	}
	p.seen = next
	return nil
}

// procExec is what is known of a process that started.
type procExec struct {
	time              time.Time
	pid, ppid         int // ppid 0: unknown
	exe, name, parent string
	cmdline           string // arguments joined by spaces, at most 4096 bytes
	hasCmdline        bool   // false: not read, or empty (between fork and exec)
	uid               string
}

// procReader reads small /proc files into one reused buffer: the process
// collectors read several per process, and a busy machine starts dozens
// of processes a second.
type procReader struct{ buf []byte }

// read returns the first max bytes of a file, valid until the next read.
func (r *procReader) read(path string, max int) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	if len(r.buf) < max {
		r.buf = make([]byte, max)
	}
	n := 0
	for n < max {
		m, err := syscall.Read(fd, r.buf[n:max])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return r.buf[:n], nil
}

// stat returns a process's start time and parent from /proc/<pid>/stat.
func (r *procReader) stat(env Env, pid int) (start uint64, ppid int, ok bool) {
	b, err := r.read(env.path("/proc/"+strconv.Itoa(pid)+"/stat"), 4096)
	if err != nil {
		return 0, 0, false
	}
	// The comm field is in parentheses and may hold spaces and ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	// After it: field 3 (state), 4 (ppid), ... 22 (starttime).
	field := 2
	for _, f := range strings.Fields(string(b[i+1:])) {
		field++
		switch field {
		case 4:
			ppid, _ = strconv.Atoi(f)
		case 22:
			start, _ = strconv.ParseUint(f, 10, 64)
			return start, ppid, true
		}
	}
	return 0, 0, false
}

// comm returns a process's name.
func (r *procReader) comm(env Env, pid int) string {
	b, err := r.read(env.path("/proc/"+strconv.Itoa(pid)+"/comm"), 64)
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(b))
}

// uid returns a process's real user id, from its status.
func (r *procReader) uid(env Env, pid int) (string, bool) {
	b, err := r.read(env.path("/proc/"+strconv.Itoa(pid)+"/status"), 4096)
	if err != nil {
		return "", false
	}
	i := bytes.Index(b, []byte("\nUid:"))
	if i < 0 {
		return "", false
	}
	b = bytes.TrimLeft(b[i+len("\nUid:"):], " \t")
	if j := bytes.IndexAny(b, " \t\n"); j >= 0 {
		b = b[:j]
	}
	return string(b), len(b) > 0
}

// exec reads a process's description from /proc; ppid < 0 asks for it to
// be read too. ok is false when the process is gone.
func (r *procReader) exec(env Env, t time.Time, pid, ppid int) (x procExec, ok bool) {
	x = procExec{time: t, pid: pid, ppid: ppid}
	if ppid < 0 {
		if _, pp, ok := r.stat(env, pid); ok {
			x.ppid = pp
		} else {
			x.ppid = 0
			return x, false
		}
	}
	base := env.path("/proc/" + strconv.Itoa(pid))
	if exe, err := os.Readlink(base + "/exe"); err == nil {
		x.exe = exe
	}
	x.name = r.comm(env, pid)
	b, err := r.read(base+"/cmdline", 4096+1)
	if err != nil {
		return x, false
	}
	if b = bytes.TrimRight(b, "\x00"); len(b) > 0 {
		for i, c := range b {
			if c == 0 {
				b[i] = ' '
			}
		}
		x.cmdline, x.hasCmdline = truncate(string(b), 4096), true
	}
	x.uid, _ = r.uid(env, pid)
	if x.ppid > 0 {
		x.parent = r.comm(env, x.ppid)
	}
	return x, true
}

// event is the process/exec event of x.
func (p *Processes) event(x procExec) wire.SecurityEvent {
	f := wire.Fields{"process.pid": strconv.Itoa(x.pid)}
	if x.ppid > 0 {
		f["process.parent.pid"] = strconv.Itoa(x.ppid)
	}
	if x.exe != "" {
		f["process.executable"] = x.exe
	}
	if x.name != "" {
		f["process.name"] = x.name
	}
	if x.hasCmdline {
		f["process.command_line"] = x.cmdline
	}
	if x.uid != "" {
		f["user.id"] = x.uid
		if name := p.userName(x.uid); name != "" {
			f["user.name"] = name
		}
	}
	if x.parent != "" {
		f["process.parent.name"] = x.parent
	}
	return newEvent(x.time, KindProcess, "process", "exec", "success", "", f)
}

func (p *Processes) userName(uid string) string {
	if p.users == nil {
		p.users = readPasswd(p.Env)
	}
	if n, ok := p.users[uid]; ok {
		return n
	}
	p.users = readPasswd(p.Env) // a user added since
	return p.users[uid]
}

func readPasswd(env Env) map[string]string {
	m := map[string]string{}
	b, err := os.ReadFile(env.path("/etc/passwd"))
	if err != nil {
		return m
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) >= 3 {
			m[f[2]] = f[0]
		}
	}
	return m
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// listPIDs lists the numeric entries of /proc.
func listPIDs(env Env) ([]int, error) {
	ents, err := os.ReadDir(env.path("/proc"))
	if err != nil {
		return nil, fmt.Errorf("cannot list processes: %w", err)
	}
	out := make([]int, 0, len(ents))
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out, nil
}

func procComm(env Env, pid int) string {
	b, err := os.ReadFile(env.path("/proc/" + strconv.Itoa(pid) + "/comm"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

package collect

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-iot/vigil/wire"
)

// Processes emits a process/start event (ECS action "exec") for every
// process that appeared since the previous call; the first call only
// records what runs. Short-lived processes that start and end between two
// calls are not seen: this is polling, not auditing.
type Processes struct {
	Env Env

	seen  map[int]uint64 // pid → start time (clock ticks), to notice reuse
	users map[string]string
}

// Name returns "processes".
func (p *Processes) Name() string { return "processes" }

// Collect adds an event per new process.
func (p *Processes) Collect(_ context.Context, r *wire.Report) error {
	pids, err := listPIDs(p.Env)
	if err != nil {
		return err
	}
	first := p.seen == nil
	next := make(map[int]uint64, len(pids))
	now := p.Env.now()
	for _, pid := range pids {
		start, ppid, ok := procStat(p.Env, pid)
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
		ev, ready := p.event(now, pid, ppid)
		if !ready {
			// Caught between fork and exec: its command line is not
			// readable yet. Left unseen, it is reported by the next poll.
			continue
		}
		next[pid] = start
		r.Events = append(r.Events, ev)
	}
	p.seen = next
	return nil
}

// event describes a new process; ready is false while its command line is
// empty (a process in the middle of exec).
func (p *Processes) event(now time.Time, pid, ppid int) (ev wire.SecurityEvent, ready bool) {
	base := p.Env.path("/proc/" + strconv.Itoa(pid))
	f := wire.Fields{"process.pid": strconv.Itoa(pid), "process.parent.pid": strconv.Itoa(ppid)}
	if exe, err := os.Readlink(base + "/exe"); err == nil {
		f["process.executable"] = exe
	}
	if name := procComm(p.Env, pid); name != "" {
		f["process.name"] = name
	}
	b, err := os.ReadFile(base + "/cmdline")
	if err != nil || len(b) == 0 {
		return wire.SecurityEvent{}, false
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	f["process.command_line"] = truncate(strings.Join(args, " "), 4096)
	if uid, ok := procUID(p.Env, pid); ok {
		f["user.id"] = uid
		if name := p.userName(uid); name != "" {
			f["user.name"] = name
		}
	}
	if ppid > 0 {
		if n := procComm(p.Env, ppid); n != "" {
			f["process.parent.name"] = n
		}
	}
	return newEvent(now, KindProcess, "process", "exec", "success", "", f), true
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

// procStat returns a process's start time and parent from /proc/<pid>/stat.
func procStat(env Env, pid int) (start uint64, ppid int, ok bool) {
	b, err := os.ReadFile(env.path("/proc/" + strconv.Itoa(pid) + "/stat"))
	if err != nil {
		return 0, 0, false
	}
	// The comm field is in parentheses and may hold spaces and ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); ppid is field 4, starttime field 22.
	if len(f) < 20 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	start, _ = strconv.ParseUint(f[19], 10, 64)
	return start, ppid, true
}

func procComm(env Env, pid int) string {
	b, err := os.ReadFile(env.path("/proc/" + strconv.Itoa(pid) + "/comm"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func procUID(env Env, pid int) (string, bool) {
	b, err := os.ReadFile(env.path("/proc/" + strconv.Itoa(pid) + "/status"))
	if err != nil {
		return "", false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "Uid:"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				return f[0], true
			}
		}
	}
	return "", false
}

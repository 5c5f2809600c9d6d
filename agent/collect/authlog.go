package collect

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-iot/vigil/wire"
)

// DefaultAuthLogs are the log files AuthLog follows when none is configured.
var DefaultAuthLogs = []string{"/var/log/auth.log", "/var/log/secure", "/var/log/messages"}

// AuthLog follows log files and emits an auth event (category
// authentication, action login, outcome success or failure) for every
// login line of sshd, dropbear, login (console and telnetd) and su it
// recognises. On the first call it starts at the end of each file (history
// is not replayed); a file that shrinks or is replaced (rotation) is read
// from its start.
type AuthLog struct {
	Env   Env
	Files []string
	// MaxLinesPerCall bounds the work of one call (default 10000); the
	// rest is read by the next.
	MaxLinesPerCall int

	pos map[string]filePos
}

type filePos struct {
	ino uint64
	off int64
}

// Name returns "authlog".
func (a *AuthLog) Name() string { return "authlog" }

// Collect reads the new lines of each file.
func (a *AuthLog) Collect(_ context.Context, r *wire.Report) error {
	files := a.Files
	if len(files) == 0 {
		files = DefaultAuthLogs
	}
	first := a.pos == nil
	if first {
		a.pos = map[string]filePos{}
	}
	max := a.MaxLinesPerCall
	if max <= 0 {
		max = 10000
	}
	var errs []error
	for _, name := range files {
		evs, err := a.follow(a.Env.path(name), first, max)
		if err != nil {
			errs = append(errs, err)
		}
		r.Events = append(r.Events, evs...)
	}
	return errors.Join(errs...)
}

func (a *AuthLog) follow(path string, first bool, maxLines int) ([]wire.SecurityEvent, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		delete(a.pos, path)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read auth log: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot read auth log: %w", err)
	}
	var ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = uint64(st.Ino)
	}
	p, known := a.pos[path]
	switch {
	case first:
		a.pos[path] = filePos{ino: ino, off: fi.Size()}
		return nil, nil
	case !known, p.ino != ino, fi.Size() < p.off:
		p = filePos{ino: ino} // new or rotated: from the start
	}
	if _, err := f.Seek(p.off, io.SeekStart); err != nil {
		return nil, fmt.Errorf("cannot read auth log: %w", err)
	}
	br := bufio.NewReaderSize(f, 16<<10)
	var out []wire.SecurityEvent
	now := a.Env.now()
	for n := 0; n < maxLines; n++ {
		line, err := br.ReadString('\n')
		if err != nil { // a partial last line is read again next time
			break
		}
		p.off += int64(len(line))
		if ev, ok := ParseAuthLine(strings.TrimRight(line, "\r\n"), now); ok {
			out = append(out, ev)
		}
	}
	a.pos[path] = p
	return out, nil
}

// authPatterns are tried in order; the first that matches wins. A
// pattern is literal text with {field} captures: a capture takes the text
// up to the next literal (a capture at the end takes one word), "{_}" is
// thrown away, and a named capture never holds a space. {source.hostport}
// is split at its last colon into source.ip and source.port. Runs of
// spaces in the line are collapsed first. (No regexp: it costs 150 kB of
// agent binary.)
var authPatterns = []struct {
	pattern, service, outcome, reason string
}{
	// OpenSSH.
	{"sshd[{_}]: Accepted {event.method} for {user.name} from {source.ip} port {source.port}", "sshd", "success", ""},
	{"sshd[{_}]: Failed {event.method} for invalid user {user.name} from {source.ip} port {source.port}", "sshd", "failure", "invalid user"},
	{"sshd[{_}]: Failed {event.method} for {user.name} from {source.ip} port {source.port}", "sshd", "failure", ""},
	{"sshd[{_}]: Invalid user {user.name} from {source.ip} port {source.port}", "sshd", "failure", "invalid user"},
	{"sshd[{_}]: Invalid user {user.name} from {source.ip}", "sshd", "failure", "invalid user"},
	// Dropbear.
	{"dropbear[{_}]: Password auth succeeded for '{user.name}' from {source.hostport}", "dropbear", "success", ""},
	{"dropbear[{_}]: Pubkey auth succeeded for '{user.name}' with key {_} from {source.hostport}", "dropbear", "success", ""},
	{"dropbear[{_}]: Pubkey auth succeeded for '{user.name}' from {source.hostport}", "dropbear", "success", ""},
	{"dropbear[{_}]: Bad password attempt for '{user.name}' from {source.hostport}", "dropbear", "failure", ""},
	{"dropbear[{_}]: Bad pubkey attempt for '{user.name}' from {source.hostport}", "dropbear", "failure", ""},
	{"dropbear[{_}]: Login attempt for nonexistent user '{user.name}' from {source.hostport}", "dropbear", "failure", "invalid user"},
	{"dropbear[{_}]: Login attempt for nonexistent user from {source.hostport}", "dropbear", "failure", "invalid user"},
	// login(1) from shadow-utils and busybox, on a console or behind telnetd.
	{"login[{_}]: FAILED LOGIN ({_}) on '{process.tty}' from '{source.address}' FOR '{user.name}'", "login", "failure", ""},
	{"login[{_}]: FAILED LOGIN ({_}) on '{process.tty}' FOR '{user.name}'", "login", "failure", ""},
	{"login[{_}]: ROOT LOGIN on '{process.tty}' from '{source.address}'", "login", "success", ""},
	{"login[{_}]: ROOT LOGIN on '{process.tty}'", "login", "success", ""},
	{"login[{_}]: LOGIN ON {process.tty} BY {user.name} FROM {source.address}", "login", "success", ""},
	{"login[{_}]: LOGIN ON {process.tty} BY {user.name}", "login", "success", ""},
	{"login[{_}]: root login on '{process.tty}'", "login", "success", ""},
	{"login[{_}]: invalid password for '{user.name}' on '{process.tty}'", "login", "failure", ""},
	{"login[{_}]: pam_unix(login:auth): authentication failure;{_} rhost={source.address} user={user.name}", "login", "failure", ""},
	{"login[{_}]: pam_unix(login:auth): authentication failure;{_} user={user.name}", "login", "failure", ""},
}

// ParseAuthLine recognises one log line of a login; the event's time is
// now (syslog lines lack the year and often the zone).
func ParseAuthLine(line string, now time.Time) (wire.SecurityEvent, bool) {
	line = strings.Join(strings.Fields(line), " ")
	for _, p := range authPatterns {
		f, ok := matchPattern(p.pattern, line)
		if !ok {
			continue
		}
		if hp, ok := f["source.hostport"]; ok {
			delete(f, "source.hostport")
			if i := strings.LastIndexByte(hp, ':'); i > 0 {
				f["source.ip"] = strings.Trim(hp[:i], "[]")
				f["source.port"] = hp[i+1:]
			}
		}
		for k, v := range f {
			if v == "" {
				delete(f, k)
			}
		}
		f["service.name"] = p.service
		if p.reason != "" {
			f["event.reason"] = p.reason
		}
		if strings.Contains(p.pattern, "ROOT LOGIN") || strings.Contains(p.pattern, "root login") {
			f["user.name"] = "root"
		}
		if m := f["event.method"]; m != "" {
			f["event.method"] = strings.ToLower(m)
		}
		sev := "low"
		if p.outcome == "success" {
			sev = "informational"
		}
		return newEvent(now, KindAuth, "authentication", "login", p.outcome, sev, f), true
	}
	return wire.SecurityEvent{}, false
}

// matchPattern matches line against an auth pattern (see authPatterns).
func matchPattern(pattern, line string) (wire.Fields, bool) {
	f := wire.Fields{}
	pos := 0
	first := true
	capture := "" // pending capture name
	for pattern != "" {
		var lit string
		if strings.HasPrefix(pattern, "{") {
			end := strings.IndexByte(pattern, '}')
			capture, pattern = pattern[1:end], pattern[end+1:]
			if pattern == "" { // a trailing capture takes one word
				w := line[pos:]
				if i := strings.IndexByte(w, ' '); i >= 0 {
					w = w[:i]
				}
				if capture != "_" {
					f[capture] = w
				}
				return f, true
			}
			continue
		}
		if i := strings.IndexByte(pattern, '{'); i >= 0 {
			lit, pattern = pattern[:i], pattern[i:]
		} else {
			lit, pattern = pattern, ""
		}
		switch {
		case first || capture != "":
			i := strings.Index(line[pos:], lit)
			if i < 0 {
				return nil, false
			}
			if capture != "" {
				v := line[pos : pos+i]
				if capture != "_" {
					if strings.IndexByte(v, ' ') >= 0 {
						return nil, false
					}
					f[capture] = v
				}
			}
			pos += i + len(lit)
		default:
			if !strings.HasPrefix(line[pos:], lit) {
				return nil, false
			}
			pos += len(lit)
		}
		first, capture = false, ""
	}
	return f, true
}

package collect

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"regexp"
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

var authPatterns = []struct {
	re      *regexp.Regexp
	service string
	outcome string
	method  string
}{
	// OpenSSH.
	{regexp.MustCompile(`sshd\[\d+\]: Accepted (\S+) for (\S+) from (\S+) port (\d+)`), "sshd", "success", ""},
	{regexp.MustCompile(`sshd\[\d+\]: Failed (\S+) for (?:invalid user )?(\S+) from (\S+) port (\d+)`), "sshd", "failure", ""},
	{regexp.MustCompile(`sshd\[\d+\]: Invalid user (\S*) from (\S+)(?: port (\d+))?`), "sshd", "failure", "invalid_user"},
	// Dropbear.
	{regexp.MustCompile(`dropbear\[\d+\]: (Password|Pubkey) auth succeeded for '([^']*)'(?: with key \S+ \S+)? from ([^:\s]+):(\d+)`), "dropbear", "success", ""},
	{regexp.MustCompile(`dropbear\[\d+\]: Bad (password|pubkey) attempt for '([^']*)' from ([^:\s]+):(\d+)`), "dropbear", "failure", ""},
	{regexp.MustCompile(`dropbear\[\d+\]: Login attempt for nonexistent user(?: '([^']*)')? from ([^:\s]+):(\d+)`), "dropbear", "failure", "invalid_user"},
	// login(1), on a console or behind telnetd.
	{regexp.MustCompile(`login\[\d+\]: FAILED LOGIN \(\d+\) on '?([^' ]+)'? (?:from '?([^' ]+)'? )?FOR '?([^' ,]+)'?`), "login", "failure", "tty"},
	{regexp.MustCompile(`login\[\d+\]: (?:ROOT )?LOGIN\s+(?i:on)\s+'?([^' ]+)'?(?: BY '?([^' ]+)'?)?(?: FROM '?([^' ]+)'?)?`), "login", "success", "tty"},
	{regexp.MustCompile(`login\[\d+\]: root login on '([^']+)'`), "login", "success", "busybox"},
	{regexp.MustCompile(`login\[\d+\]: invalid password for '([^']*)' on '([^']+)'`), "login", "failure", "busybox"},
	{regexp.MustCompile(`login\[\d+\]: pam_unix\(login:auth\): authentication failure;.*?(?: rhost=(\S*))? user=(\S+)`), "login", "failure", "pam"},
}

// ParseAuthLine recognises one log line of a login; the event's time is
// now (syslog lines lack the year and often the zone).
func ParseAuthLine(line string, now time.Time) (wire.SecurityEvent, bool) {
	for i, p := range authPatterns {
		m := p.re.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		f := wire.Fields{"service.name": p.service}
		set := func(k, v string) {
			if v != "" {
				f[k] = v
			}
		}
		switch i {
		case 0, 1: // method, user, ip, port
			set("event.method", m[1])
			set("user.name", m[2])
			set("source.ip", m[3])
			set("source.port", m[4])
		case 2:
			set("user.name", m[1])
			set("source.ip", m[2])
			set("source.port", m[3])
			set("event.reason", "invalid user")
		case 3, 4:
			set("event.method", strings.ToLower(m[1]))
			set("user.name", m[2])
			set("source.ip", m[3])
			set("source.port", m[4])
		case 5:
			set("user.name", m[1])
			set("source.ip", m[2])
			set("source.port", m[3])
			set("event.reason", "invalid user")
		case 6:
			set("process.tty", m[1])
			set("source.address", m[2])
			set("user.name", m[3])
		case 7:
			set("process.tty", m[1])
			set("user.name", m[2])
			if m[2] == "" && strings.Contains(line, "ROOT LOGIN") {
				f["user.name"] = "root"
			}
			set("source.address", m[3])
		case 8:
			set("process.tty", m[1])
			set("user.name", "root")
		case 9:
			set("user.name", m[1])
			set("process.tty", m[2])
		case 10:
			set("source.address", m[1])
			set("user.name", m[2])
		}
		if strings.Contains(line, "telnetd") || strings.Contains(f["process.tty"], "pts") && p.service == "login" {
			f["service.name"] = "login"
		}
		sev := "low"
		if p.outcome == "success" {
			sev = "informational"
		}
		return newEvent(now, KindAuth, "authentication", "login", p.outcome, sev, f), true
	}
	return wire.SecurityEvent{}, false
}

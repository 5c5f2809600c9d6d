package collect

import (
	"bytes"
	"strconv"
	"strings"
)

// KmsgRecord is one record of /dev/kmsg: "prio,seq,usec,flags;message".
type KmsgRecord struct {
	// Priority is the syslog priority: facility·8 + level (lines written
	// by user space to /dev/kmsg get facility 1, user, unless they name one).
	Priority int
	Seq      uint64
	// Usec is the time since boot in microseconds.
	Usec    uint64
	Message string
}

// Level returns the syslog level (0 emerg … 7 debug).
func (r KmsgRecord) Level() int { return r.Priority & 7 }

// Facility returns the syslog facility (0 kernel, 1 user, ...).
func (r KmsgRecord) Facility() int { return r.Priority >> 3 }

// ParseKmsgLine parses one record line of /dev/kmsg. Continuation lines
// (" KEY=value", the record's dictionary) and malformed lines are not
// records: ok is false.
func ParseKmsgLine(line []byte) (KmsgRecord, bool) {
	line = bytes.TrimRight(line, "\n")
	head, msg, ok := bytes.Cut(line, []byte(";"))
	if !ok || len(line) == 0 || line[0] == ' ' {
		return KmsgRecord{}, false
	}
	f := strings.SplitN(string(head), ",", 4)
	if len(f) < 3 {
		return KmsgRecord{}, false
	}
	prio, err1 := strconv.ParseUint(f[0], 10, 16)
	seq, err2 := strconv.ParseUint(f[1], 10, 64)
	usec, err3 := strconv.ParseUint(f[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return KmsgRecord{}, false
	}
	return KmsgRecord{Priority: int(prio), Seq: seq, Usec: usec, Message: unescapeKmsg(msg)}, true
}

// unescapeKmsg undoes the kernel's \xHH escapes of non-printable bytes
// and drops the control characters that remain.
func unescapeKmsg(b []byte) string {
	if bytes.IndexByte(b, '\\') < 0 && printable(b) {
		return string(b)
	}
	var sb strings.Builder
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '\\' && i+3 < len(b) && b[i+1] == 'x' {
			if v, err := strconv.ParseUint(string(b[i+2:i+4]), 16, 8); err == nil {
				c = byte(v)
				i += 3
			}
		}
		if c < 0x20 || c == 0x7f {
			c = ' '
		}
		sb.WriteByte(c)
	}
	return sb.String()
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// KmsgEvent is what a kernel log message says about the hardware.
type KmsgEvent struct {
	// Action is one of the hardware actions (ActionStorageError,
	// ActionOOMKill, ActionMachineCheck, ActionUnderVoltage).
	Action string
	// Device is the block device or file system source named, if any.
	Device string
	// PID and Process are the process an OOM kill names.
	PID     int
	Process string
}

// ClassifyKmsg tells whether a kernel message reports failing hardware or
// an OOM kill, and what it names.
func ClassifyKmsg(msg string) (KmsgEvent, bool) {
	switch {
	case strings.Contains(msg, "Out of memory: Killed process "), strings.Contains(msg, "out of memory: Killed process "):
		// "Out of memory: Killed process 1234 (name) total-vm:..."
		e := KmsgEvent{Action: ActionOOMKill}
		rest := msg[strings.Index(msg, "Killed process ")+len("Killed process "):]
		pid, rest, _ := strings.Cut(rest, " ")
		if p, err := strconv.Atoi(pid); err == nil && p > 0 {
			e.PID = p
		}
		if strings.HasPrefix(rest, "(") {
			if name, _, ok := strings.Cut(rest[1:], ")"); ok {
				e.Process = name
			}
		}
		return e, true
	case strings.Contains(msg, "I/O error"):
		// "I/O error, dev sda, sector 2048 op 0x1:(WRITE) ..." (blk),
		// "Buffer I/O error on dev sda1, logical block 0, ..." (buffer
		// heads), "EXT4-fs warning (device sda1): ext4_end_bio: I/O error".
		return KmsgEvent{Action: ActionStorageError, Device: kmsgDevice(msg)}, true
	case strings.Contains(msg, "-fs error (device "), strings.Contains(msg, "Remounting filesystem read-only"),
		strings.Contains(msg, "UBIFS error"), strings.Contains(msg, "SQUASHFS error"),
		strings.Contains(msg, "critical medium error"), strings.Contains(msg, "failed command: READ"),
		strings.Contains(msg, "failed command: WRITE"), strings.Contains(msg, "uncorrectable error"):
		return KmsgEvent{Action: ActionStorageError, Device: kmsgDevice(msg)}, true
	case strings.Contains(msg, "[Hardware Error]"):
		return KmsgEvent{Action: ActionMachineCheck}, true
	case strings.Contains(msg, "Undervoltage detected"), strings.Contains(msg, "Under-voltage detected"):
		return KmsgEvent{Action: ActionUnderVoltage}, true
	}
	return KmsgEvent{}, false
}

// kmsgDevice finds the device a storage message names: "dev sda,",
// "on dev sda1,", "(device sda1)", "EXT4-fs (sda1):".
func kmsgDevice(msg string) string {
	for _, p := range []string{"dev ", "(device "} {
		if i := strings.Index(msg, p); i >= 0 {
			if d := deviceName(msg[i+len(p):]); d != "" {
				return d
			}
		}
	}
	if i := strings.Index(msg, "-fs ("); i >= 0 {
		return deviceName(msg[i+len("-fs ("):])
	}
	return ""
}

func deviceName(s string) string {
	end := strings.IndexAny(s, ",): ")
	if end < 0 {
		end = len(s)
	}
	return s[:min(end, 64)]
}

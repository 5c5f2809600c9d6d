package collect

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

// The netlink process connector (linux/connector.h, linux/cn_proc.h).
const (
	cnIdxProc = 1 // CN_IDX_PROC, also the multicast group
	cnValProc = 1 // CN_VAL_PROC

	procCnMcastListen = 1 // PROC_CN_MCAST_LISTEN

	procEventNone = 0x00000000 // the answer to a listen request
	procEventFork = 0x00000001
	procEventExec = 0x00000002
	procEventExit = 0x80000000

	nlmsgHdrLen = 16 // struct nlmsghdr
	cnMsgLen    = 20 // struct cn_msg
	procHdrLen  = 16 // struct proc_event: what, cpu, timestamp_ns

	// maxPendingExecs bounds the execs kept between two collections; more
	// are counted as dropped.
	maxPendingExecs = 2048
	// maxParents bounds the fork table (pid → parent) used when a process
	// is gone before it could be read (kernels before 6.6, which send
	// every event).
	maxParents = 8192
)

// procConnector listens to the kernel's process events and describes each
// process that execs at once, from /proc, while it still runs.
type procConnector struct {
	f   *os.File
	env Env

	mu      sync.Mutex
	execs   []procExec
	dropped int
	err     error // why the reader stopped
	done    chan struct{}

	parents map[int]int // reader only
	proc    procReader  // reader only
	others  int         // events other than exec received (reader only)
}

// openProcConnector subscribes to the process events and waits for the
// kernel's answer: an error when it refuses (EPERM without CAP_NET_ADMIN)
// or does not answer (outside the initial user or PID namespace).
func openProcConnector(env Env) (*procConnector, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, syscall.NETLINK_CONNECTOR)
	if err != nil {
		return nil, fmt.Errorf("cannot open the proc connector: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK, Groups: cnIdxProc}); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("cannot join the proc connector's group: %w", err)
	}
	// The file is non-blocking: reads wait in the runtime's poller, with
	// no thread of their own.
	f := os.NewFile(uintptr(fd), "proc-connector")
	c := &procConnector{f: f, env: env, done: make(chan struct{}), parents: map[int]int{}}
	seq := uint32(time.Now().UnixNano())
	if err := syscall.Sendto(fd, listenMsg(seq, false), 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		f.Close()
		return nil, fmt.Errorf("cannot subscribe to the proc connector: %w", err)
	}
	if err := c.awaitAck(seq); err != nil {
		f.Close()
		return nil, err
	}
	// Linux 6.6 and later filter events per listener: execs only, not the
	// forks and exits of every thread. The filtered request is not
	// answered (the answer is filtered out too), so it comes second; older
	// kernels ignore it and send every event.
	_ = syscall.Sendto(fd, listenMsg(seq+1, true), 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK})
	go c.read()
	return c, nil
}

var errNoAnswer = errors.New("the proc connector did not answer (not in the initial user and PID namespaces?)")

// listenMsg is a netlink message carrying PROC_CN_MCAST_LISTEN: alone, or
// with filtered, in a struct proc_input asking for execs only.
func listenMsg(seq uint32, filtered bool) []byte {
	ne := binary.NativeEndian
	dl := 4
	if filtered {
		dl = 8
	}
	b := make([]byte, nlmsgHdrLen+cnMsgLen+dl)
	ne.PutUint32(b[0:], uint32(len(b)))
	ne.PutUint16(b[4:], syscall.NLMSG_DONE)
	ne.PutUint32(b[8:], seq)
	ne.PutUint32(b[12:], uint32(os.Getpid()))
	m := b[nlmsgHdrLen:]
	ne.PutUint32(m[0:], cnIdxProc)
	ne.PutUint32(m[4:], cnValProc)
	ne.PutUint32(m[8:], seq)
	ne.PutUint32(m[12:], seq) // the answer's ack is seq+1 (its seq is the kernel's own)
	ne.PutUint16(m[16:], uint16(dl))
	ne.PutUint32(m[cnMsgLen:], procCnMcastListen)
	if filtered {
		ne.PutUint32(m[cnMsgLen+4:], procEventExec)
	}
	return b
}

// awaitAck reads until the answer to the listen request with seq: a
// PROC_EVENT_NONE whose cn_msg ack is seq+1, carrying an errno.
func (c *procConnector) awaitAck(seq uint32) error {
	deadline := time.Now().Add(time.Second)
	c.f.SetReadDeadline(deadline)
	defer c.f.SetReadDeadline(time.Time{})
	buf := make([]byte, 4096)
	for {
		n, err := c.f.Read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return errNoAnswer
		}
		if err != nil {
			return fmt.Errorf("cannot read the proc connector: %w", err)
		}
		var ackErr uint32
		found := false
		eachProcEvent(buf[:n], func(_, cnAck uint32, what uint32, data []byte) {
			if what == procEventNone && cnAck == seq+1 && len(data) >= 4 {
				found, ackErr = true, binary.NativeEndian.Uint32(data)
			}
		})
		if found {
			if ackErr != 0 {
				return fmt.Errorf("the proc connector refused: %w", syscall.Errno(ackErr))
			}
			return nil
		}
	}
}

// eachProcEvent calls fn for each process event in a datagram: the
// cn_msg's seq and ack, the event's type and its data.
func eachProcEvent(b []byte, fn func(seq, ack, what uint32, data []byte)) {
	ne := binary.NativeEndian
	for len(b) >= nlmsgHdrLen {
		l := int(ne.Uint32(b))
		if l < nlmsgHdrLen || l > len(b) {
			return
		}
		m := b[nlmsgHdrLen:l]
		if len(m) >= cnMsgLen && ne.Uint32(m[0:]) == cnIdxProc && ne.Uint32(m[4:]) == cnValProc {
			dl := int(ne.Uint16(m[16:]))
			if ev := m[cnMsgLen:]; dl <= len(ev) && dl >= procHdrLen {
				ev = ev[:dl]
				fn(ne.Uint32(m[8:]), ne.Uint32(m[12:]), ne.Uint32(ev[0:]), ev[procHdrLen:])
			}
		}
		b = b[min((l+3)&^3, len(b)):]
	}
}

// read receives events until the file is closed.
func (c *procConnector) read() {
	defer close(c.done)
	buf := make([]byte, 8192)
	ne := binary.NativeEndian
	for {
		n, err := c.f.Read(buf)
		if errors.Is(err, syscall.ENOBUFS) {
			// The socket's buffer overflowed: events were lost.
			c.mu.Lock()
			c.dropped++
			c.mu.Unlock()
			continue
		}
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		now := c.env.now()
		eachProcEvent(buf[:n], func(_, _, what uint32, d []byte) {
			if what != procEventExec {
				c.others++
			}
			switch {
			case what == procEventFork && len(d) >= 16:
				ptgid, cpid, ctgid := int(ne.Uint32(d[4:])), int(ne.Uint32(d[8:])), int(ne.Uint32(d[12:]))
				if cpid == ctgid { // a process, not a thread
					if len(c.parents) >= maxParents {
						c.parents = map[int]int{}
					}
					c.parents[cpid] = ptgid
				}
			case what == procEventExec && len(d) >= 8:
				c.exec(now, int(ne.Uint32(d[4:])))
			case what == procEventExit && len(d) >= 8:
				if pid, tgid := int(ne.Uint32(d[0:])), int(ne.Uint32(d[4:])); pid == tgid {
					delete(c.parents, pid)
				}
			}
		})
	}
}

// exec describes a process that just exec'd, or what is known of it when
// it is already gone.
func (c *procConnector) exec(now time.Time, pid int) {
	c.mu.Lock()
	full := len(c.execs) >= maxPendingExecs
	if full {
		c.dropped++
	}
	c.mu.Unlock()
	if full {
		return
	}
	x, ok := c.proc.exec(c.env, now, pid, -1)
	if !ok && x.ppid == 0 {
		x.ppid = c.parents[pid]
		if x.ppid > 0 {
			x.parent = c.proc.comm(c.env, x.ppid)
		}
	}
	c.mu.Lock()
	c.execs = append(c.execs, x)
	c.mu.Unlock()
}

// drain returns the execs since the previous call, the number of events
// lost, and the error that stopped the reader, if it stopped.
func (c *procConnector) drain() (execs []procExec, dropped int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	execs, dropped, err = c.execs, c.dropped, c.err
	c.execs, c.dropped = nil, 0
	return execs, dropped, err
}

// Close stops the reader.
func (c *procConnector) Close() error {
	err := c.f.Close()
	<-c.done
	return err
}

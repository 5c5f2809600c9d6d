package collect

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/vigil-iot/vigil/wire"
)

// Socket is one line of /proc/net/{tcp,tcp6,udp,udp6}.
type Socket struct {
	Proto  string // tcp or udp
	Local  netip.AddrPort
	Remote netip.AddrPort
	State  uint8 // TCP state; 0x0A listen, 0x01 established
	Inode  uint64
}

// TCP states of /proc/net/tcp.
const (
	TCPEstablished = 0x01
	TCPListen      = 0x0A
	udpUnconnected = 0x07
)

// Listening reports whether the socket accepts connections or datagrams
// from anyone: a TCP socket in LISTEN, or an unconnected UDP socket.
func (s Socket) Listening() bool {
	if s.Proto == "tcp" {
		return s.State == TCPListen
	}
	return s.State == udpUnconnected && s.Remote.Port() == 0
}

// ReadSockets reads the socket tables of /proc/net under env's root; a
// missing table (no IPv6) is skipped.
func ReadSockets(env Env) ([]Socket, error) {
	var out []Socket
	for _, t := range []string{"tcp", "tcp6", "udp", "udp6"} {
		b, err := os.ReadFile(env.path("/proc/net/" + t))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return out, fmt.Errorf("cannot read sockets: %w", err)
		}
		s, err := ParseSockets(b, strings.TrimSuffix(t, "6"))
		if err != nil {
			return out, fmt.Errorf("cannot parse /proc/net/%s: %w", t, err)
		}
		out = append(out, s...)
	}
	return out, nil
}

// ParseSockets parses the content of a /proc/net/tcp-style table.
func ParseSockets(b []byte, proto string) ([]Socket, error) {
	var out []Socket
	sc := bufio.NewScanner(bytes.NewReader(b))
	n := 0
	for sc.Scan() {
		n++
		if n == 1 {
			continue // header
		}
		f := strings.Fields(sc.Text())
		if len(f) < 10 {
			continue
		}
		local, err := parseHexAddr(f[1])
		if err != nil {
			return out, fmt.Errorf("line %d: local address: %w", n, err)
		}
		remote, err := parseHexAddr(f[2])
		if err != nil {
			return out, fmt.Errorf("line %d: remote address: %w", n, err)
		}
		st, err := strconv.ParseUint(f[3], 16, 8)
		if err != nil {
			return out, fmt.Errorf("line %d: state %q: %w", n, f[3], err)
		}
		ino, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			return out, fmt.Errorf("line %d: inode %q: %w", n, f[9], err)
		}
		out = append(out, Socket{Proto: proto, Local: local, Remote: remote, State: uint8(st), Inode: ino})
	}
	return out, sc.Err()
}

// parseHexAddr parses "0100007F:0277": the address as 32-bit words in host
// (little-endian) order, then the port in hex.
func parseHexAddr(s string) (netip.AddrPort, error) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("%q has no port", s)
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port of %q: %w", s, err)
	}
	raw, err := hex.DecodeString(a)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("address %q is not 8 or 32 hex digits", a)
	}
	for i := 0; i < len(raw); i += 4 { // each word is little-endian
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	addr, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), nil
}

// Proc names a process.
type Proc struct {
	PID  int
	Name string
}

// SocketOwners maps socket inodes to the process holding them, by
// reading the /proc/<pid>/fd links it may read (all of them as root).
func SocketOwners(env Env, inodes map[uint64]bool) map[uint64]Proc {
	out := map[uint64]Proc{}
	if len(inodes) == 0 {
		return out
	}
	pids, _ := listPIDs(env)
	for _, pid := range pids {
		dir := env.path("/proc/" + strconv.Itoa(pid) + "/fd")
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			l, err := os.Readlink(filepath.Join(dir, e.Name()))
			if err != nil || !strings.HasPrefix(l, "socket:[") {
				continue
			}
			ino, err := strconv.ParseUint(strings.TrimSuffix(l[len("socket:["):], "]"), 10, 64)
			if err != nil || !inodes[ino] {
				continue
			}
			if _, ok := out[ino]; !ok {
				out[ino] = Proc{PID: pid, Name: procComm(env, pid)}
			}
		}
		if len(out) == len(inodes) {
			break
		}
	}
	return out
}

// Network fills network.interfaces, network.listening and
// network.connections, and emits a network/listen event for each listener
// that was not there at the previous call (none on the first call).
type Network struct {
	Env Env
	// Interfaces lists the interfaces to report (nil: net.Interfaces, the
	// real ones; tests set it).
	Interfaces func() ([]wire.Interface, error)

	prev            map[string]bool
	owners          map[uint64]Proc // listening socket inode → owner (PID 0: none found), while it listens
	prevIn, prevOut uint64
	havePrevBytes   bool
}

// Name returns "network".
func (n *Network) Name() string { return "network" }

// Collect fills the network section.
func (n *Network) Collect(_ context.Context, r *wire.Report) error {
	nw := ensureNetwork(r)
	var errs []error
	ifs := n.Interfaces
	if ifs == nil {
		ifs = SystemInterfaces
	}
	if list, err := ifs(); err != nil {
		errs = append(errs, err)
	} else {
		nw.Interfaces = list
	}
	socks, err := ReadSockets(n.Env)
	if err != nil {
		errs = append(errs, err)
	}
	listen := map[uint64]bool{}
	var conns wire.Connections
	remotes := map[netip.Addr]bool{}
	for _, s := range socks {
		switch {
		case s.Listening():
			listen[s.Inode] = true
		case s.Proto == "tcp" && s.State == TCPEstablished:
			conns.Count++
			remotes[s.Remote.Addr()] = true
		}
	}
	conns.DistinctRemotes = uint64(len(remotes))
	// Owners are looked up (a walk of every /proc/PID/fd) only for
	// listening sockets not seen before.
	missing := map[uint64]bool{}
	for ino := range listen {
		if _, ok := n.owners[ino]; !ok {
			missing[ino] = true
		}
	}
	if n.owners == nil {
		n.owners = map[uint64]Proc{}
	}
	if len(missing) > 0 {
		found := SocketOwners(n.Env, missing)
		for ino := range missing {
			n.owners[ino] = found[ino]
		}
	}
	for ino := range n.owners {
		if !listen[ino] {
			delete(n.owners, ino)
		}
	}
	owners := n.owners
	now := n.Env.now()
	cur := map[string]bool{}
	for _, s := range socks {
		if !s.Listening() {
			continue
		}
		l := wire.Listener{Proto: s.Proto, Addr: s.Local.Addr().String(), Port: s.Local.Port()}
		if p := owners[s.Inode]; p.PID != 0 {
			l.PID, l.Process = p.PID, p.Name
		}
		key := l.Proto + "/" + l.Addr + "/" + strconv.Itoa(int(l.Port))
		if cur[key] {
			continue // SO_REUSEPORT twins
		}
		cur[key] = true
		nw.Listening = append(nw.Listening, l)
		if n.prev != nil && !n.prev[key] {
			f := wire.Fields{
				"network.transport": l.Proto,
				"destination.ip":    l.Addr,
				"destination.port":  strconv.Itoa(int(l.Port)),
			}
			if l.Process != "" {
				f["process.name"] = l.Process
				f["process.pid"] = strconv.Itoa(l.PID)
			}
			r.Events = append(r.Events, newEvent(now, KindNetwork, "network", "listen", "success", "medium", f))
		}
	}
	n.prev = cur
	// sort.Slice, not slices.SortFunc: a generic sort of one more element
	// type adds about 12 kB of code to the agent's binary.
	sort.Slice(nw.Listening, func(i, j int) bool {
		a, b := nw.Listening[i], nw.Listening[j]
		if a.Proto != b.Proto {
			return a.Proto < b.Proto
		}
		if a.Addr != b.Addr {
			return a.Addr < b.Addr
		}
		return a.Port < b.Port
	})
	if in, out, err := interfaceBytes(n.Env); err == nil {
		if n.havePrevBytes && in >= n.prevIn && out >= n.prevOut {
			conns.BytesIn, conns.BytesOut = in-n.prevIn, out-n.prevOut
		}
		n.prevIn, n.prevOut, n.havePrevBytes = in, out, true
	}
	nw.Connections = &conns
	return errors.Join(errs...)
}

// interfaceBytes sums the received and sent bytes of every interface but
// loopback in /proc/net/dev.
func interfaceBytes(env Env) (in, out uint64, err error) {
	b, err := os.ReadFile(env.path("/proc/net/dev"))
	if err != nil {
		return 0, 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		name, rest, ok := strings.Cut(l, ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 9 {
			continue
		}
		rx, err1 := strconv.ParseUint(f[0], 10, 64)
		tx, err2 := strconv.ParseUint(f[8], 10, 64)
		if err1 == nil && err2 == nil {
			in += rx
			out += tx
		}
	}
	return in, out, nil
}

// SystemInterfaces lists the machine's interfaces other than loopback,
// with their MAC and addresses.
func SystemInterfaces() ([]wire.Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("cannot list interfaces: %w", err)
	}
	var out []wire.Interface
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 {
			continue
		}
		w := wire.Interface{Name: i.Name, MAC: i.HardwareAddr.String()}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			w.Addresses = append(w.Addresses, a.String())
		}
		out = append(out, w)
	}
	return out, nil
}

package sensor

import (
	"net/netip"
	"strconv"
	"strings"

	vigil "github.com/vigil-iot/vigil"
)

// filter is a capture filter evaluated on decoded packets.
type filter func(p *packet) bool

// parseFilter compiles the common subset of tcpdump's filter language,
// evaluated in user space on every packet (pcap files and live capture
// alike; no kernel BPF, which would need libpcap's compiler):
//
//	[tcp|udp|icmp|icmp6|ip|ip6] [src|dst] [host ADDR | net CIDR | port N | portrange A-B]
//
// joined with and/&&, or/||, not/! and parentheses. As in tcpdump, a bare
// value after and/or reuses the previous qualifiers ("port 80 or 443").
// Frames that are not IP never match a non-empty filter. Errors are
// EINVALID and name the offending token.
func parseFilter(expr string) (filter, error) {
	toks := tokenizeFilter(expr)
	if len(toks) == 0 {
		return nil, nil
	}
	p := &filterParser{toks: toks}
	f, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.i < len(p.toks) {
		return nil, p.errorf("unexpected %q", p.toks[p.i])
	}
	return f, nil
}

func tokenizeFilter(s string) []string {
	s = strings.NewReplacer("(", " ( ", ")", " ) ", "!", " ! ").Replace(s)
	s = strings.ReplaceAll(s, "! =", "!=")
	return strings.Fields(s)
}

type filterParser struct {
	toks []string
	i    int
	// last qualifiers, reused by a bare value
	lastProto, lastDir, lastKind string
}

func (p *filterParser) errorf(format string, args ...any) error {
	return vigil.Errorf(vigil.EINVALID, "cannot parse filter at token %d: "+format, append([]any{p.i + 1}, args...)...)
}

func (p *filterParser) peek() string {
	if p.i < len(p.toks) {
		return strings.ToLower(p.toks[p.i])
	}
	return ""
}

func (p *filterParser) or() (filter, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.peek() == "or" || p.peek() == "||" {
		p.i++
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		a, b := l, r
		l = func(pk *packet) bool { return a(pk) || b(pk) }
	}
	return l, nil
}

func (p *filterParser) and() (filter, error) {
	l, err := p.not()
	if err != nil {
		return nil, err
	}
	for p.peek() == "and" || p.peek() == "&&" {
		p.i++
		r, err := p.not()
		if err != nil {
			return nil, err
		}
		a, b := l, r
		l = func(pk *packet) bool { return a(pk) && b(pk) }
	}
	return l, nil
}

func (p *filterParser) not() (filter, error) {
	if t := p.peek(); t == "not" || t == "!" {
		p.i++
		f, err := p.not()
		if err != nil {
			return nil, err
		}
		return func(pk *packet) bool { return !f(pk) }, nil
	}
	if p.peek() == "(" {
		p.i++
		f, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.peek() != ")" {
			return nil, p.errorf("missing )")
		}
		p.i++
		return f, nil
	}
	return p.primitive()
}

var protoNums = map[string]uint8{"tcp": ipTCP, "udp": ipUDP, "icmp": 1, "icmp6": 58}

func (p *filterParser) primitive() (filter, error) {
	proto, dir, kind := "", "", ""
	for {
		t := p.peek()
		switch {
		case t == "tcp" || t == "udp" || t == "icmp" || t == "icmp6" || t == "ip" || t == "ip6":
			proto = t
		case t == "src" || t == "dst":
			dir = t
			if p.i+2 < len(p.toks) && (strings.ToLower(p.toks[p.i+1]) == "or" || strings.ToLower(p.toks[p.i+1]) == "and") &&
				(strings.ToLower(p.toks[p.i+2]) == "src" || strings.ToLower(p.toks[p.i+2]) == "dst") {
				dir = "any" // "src or dst"
				p.i += 2
			}
		case t == "host" || t == "net" || t == "port" || t == "portrange":
			kind = t
		default:
			goto value
		}
		p.i++
	}
value:
	t := p.peek()
	if kind == "" && proto == "" && dir == "" {
		if t == "" || t == ")" || t == "and" || t == "or" {
			return nil, p.errorf("expected a primitive, got %q", t)
		}
		// A bare value reuses the previous qualifiers.
		proto, dir, kind = p.lastProto, p.lastDir, p.lastKind
		if kind == "" {
			return nil, p.errorf("unknown primitive %q", t)
		}
	}
	p.lastProto, p.lastDir, p.lastKind = proto, dir, kind
	var protoOK filter = func(*packet) bool { return true }
	switch proto {
	case "ip":
		protoOK = func(pk *packet) bool { return pk.src.Is4() }
	case "ip6":
		protoOK = func(pk *packet) bool { return pk.src.Is6() && !pk.src.Is4In6() }
	case "":
	default:
		n := protoNums[proto]
		protoOK = func(pk *packet) bool { return pk.proto == n }
	}
	if kind == "" {
		if dir != "" {
			return nil, p.errorf("%s needs host, net or port", dir)
		}
		return protoOK, nil // "tcp", "udp", ...
	}
	if t == "" {
		return nil, p.errorf("%s needs a value", kind)
	}
	p.i++
	pick := func(match func(a netip.Addr, port uint16) bool) filter {
		switch dir {
		case "src":
			return func(pk *packet) bool { return protoOK(pk) && match(pk.src, pk.sport) }
		case "dst":
			return func(pk *packet) bool { return protoOK(pk) && match(pk.dst, pk.dport) }
		}
		return func(pk *packet) bool { return protoOK(pk) && (match(pk.src, pk.sport) || match(pk.dst, pk.dport)) }
	}
	switch kind {
	case "host":
		a, err := netip.ParseAddr(t)
		if err != nil {
			return nil, p.errorf("host %q is not an IP address", t)
		}
		return pick(func(x netip.Addr, _ uint16) bool { return x == a }), nil
	case "net":
		pre, err := netip.ParsePrefix(t)
		if err != nil {
			return nil, p.errorf("net %q is not a CIDR prefix", t)
		}
		return pick(func(x netip.Addr, _ uint16) bool { return pre.Contains(x) }), nil
	case "port":
		n, err := strconv.ParseUint(t, 10, 16)
		if err != nil {
			return nil, p.errorf("port %q is not a number", t)
		}
		port := uint16(n)
		ported := func(pk *packet) bool { return pk.proto == ipTCP || pk.proto == ipUDP }
		f := pick(func(_ netip.Addr, x uint16) bool { return x == port })
		return func(pk *packet) bool { return ported(pk) && f(pk) }, nil
	case "portrange":
		lo, hi, ok := strings.Cut(t, "-")
		a, err1 := strconv.ParseUint(lo, 10, 16)
		b, err2 := strconv.ParseUint(hi, 10, 16)
		if !ok || err1 != nil || err2 != nil || a > b {
			return nil, p.errorf("portrange %q is not A-B", t)
		}
		f := pick(func(_ netip.Addr, x uint16) bool { return uint64(x) >= a && uint64(x) <= b })
		return func(pk *packet) bool { return (pk.proto == ipTCP || pk.proto == ipUDP) && f(pk) }, nil
	}
	return nil, p.errorf("unknown primitive %q", t)
}

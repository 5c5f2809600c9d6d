package command

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Block bounds.
const (
	// DefaultBlockTimeout is a block's expiry when timeout_s is absent.
	DefaultBlockTimeout = time.Hour
	// MaxBlockTimeout is the longest expiry a block may ask for.
	MaxBlockTimeout = 24 * time.Hour
)

// Block is a validated block or unblock request: traffic to or from
// Prefix (and, when Port is set, only to or from that port of Prefix over
// Proto) is dropped in input, forward and output until Timeout passes.
type Block struct {
	Prefix netip.Prefix
	// Protos is empty without a port; with a port, "tcp", "udp" or both.
	Protos []string
	// Port is 0 for every port.
	Port uint16
	// Timeout is zero for an unblock.
	Timeout time.Duration
}

// ParseBlock validates the params of a block (unblock false) or unblock
// command: addr (an IP address, or a prefix with no host bits set; not a
// default route, loopback, multicast or unspecified address), optionally
// port (1-65535) and proto ("tcp" or "udp"; both when a port comes
// without one), and for block timeout_s (whole seconds in [1, 86400],
// default 3600). An unblock ignores timeout and timeout_s (a rollback
// sends the block's own params back). Any other param is an error.
func ParseBlock(p map[string]string, unblock bool) (Block, error) {
	what := "block"
	known := []string{"addr", "port", "proto", "timeout_s"}
	if unblock {
		what = "unblock"
		known = append(known, "timeout")
	}
	var unknown []string
	for k := range p {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		want := "addr, port, proto, timeout_s"
		if unblock {
			want = "addr, port, proto"
		}
		return Block{}, fmt.Errorf("cannot %s: unknown params %s (want %s)", what, strings.Join(unknown, ", "), want)
	}
	var b Block
	addr := p["addr"]
	switch {
	case addr == "":
		return Block{}, fmt.Errorf("cannot %s: addr is required", what)
	case strings.Contains(addr, "/"):
		pr, err := netip.ParsePrefix(addr)
		if err != nil {
			return Block{}, fmt.Errorf("cannot %s: addr %q is not an IP address or prefix", what, addr)
		}
		if pr.Masked() != pr {
			return Block{}, fmt.Errorf("cannot %s: prefix %q has host bits set (did you mean %s?)", what, addr, pr.Masked())
		}
		b.Prefix = pr
	default:
		a, err := netip.ParseAddr(addr)
		if err != nil || a.Zone() != "" {
			return Block{}, fmt.Errorf("cannot %s: addr %q is not an IP address or prefix", what, addr)
		}
		b.Prefix = netip.PrefixFrom(a, a.BitLen())
	}
	a := b.Prefix.Addr()
	switch {
	case a.Is4In6():
		return Block{}, fmt.Errorf("cannot %s: addr %q is an IPv4-mapped IPv6 address; give the IPv4 address", what, addr)
	case b.Prefix.Bits() == 0:
		return Block{}, fmt.Errorf("cannot %s: addr %q would match every address", what, addr)
	case a.IsUnspecified() || a.IsLoopback() || a.IsMulticast():
		return Block{}, fmt.Errorf("cannot %s: addr %q is an unspecified, loopback or multicast address", what, addr)
	}
	if s, ok := p["port"]; ok {
		n, err := strconv.ParseUint(s, 10, 16)
		if err != nil || n == 0 {
			return Block{}, fmt.Errorf("cannot %s: port %q is not a number in [1, 65535]", what, s)
		}
		b.Port = uint16(n)
	}
	switch pr, ok := p["proto"]; {
	case !ok && b.Port != 0:
		b.Protos = []string{"tcp", "udp"}
	case !ok:
	case pr != "tcp" && pr != "udp":
		return Block{}, fmt.Errorf("cannot %s: proto %q is not tcp or udp", what, pr)
	case b.Port == 0:
		return Block{}, fmt.Errorf("cannot %s: proto %q needs a port", what, pr)
	default:
		b.Protos = []string{pr}
	}
	if !unblock {
		b.Timeout = DefaultBlockTimeout
		if s, ok := p["timeout_s"]; ok {
			n, err := strconv.ParseUint(s, 10, 32)
			if err != nil || n == 0 || time.Duration(n)*time.Second > MaxBlockTimeout {
				return Block{}, fmt.Errorf("cannot block: timeout_s %q is not a whole number of seconds in [1, %d]", s, int(MaxBlockTimeout.Seconds()))
			}
			b.Timeout = time.Duration(n) * time.Second
		}
	}
	return b, nil
}

// String names the block: "203.0.113.7/32", "10.0.0.0/8 tcp/23".
func (b Block) String() string {
	s := b.Prefix.String()
	if b.Port != 0 {
		s += " " + strings.Join(b.Protos, "+") + "/" + strconv.Itoa(int(b.Port))
	}
	return s
}

// blockSetup declares the table inet vigil: the sets blocked (IPv4) and
// blocked6 (IPv6) of prefixes, blocked_svc and blocked6_svc of
// prefix . protocol . port, all with per-element timeouts, and a drop
// chain jumped to from input, forward and output. The chains are flushed
// and refilled, so running it again does not duplicate rules; the sets
// keep their elements.
const blockSetup = `add table inet vigil
add set inet vigil blocked { type ipv4_addr; flags interval, timeout; }
add set inet vigil blocked6 { type ipv6_addr; flags interval, timeout; }
add set inet vigil blocked_svc { type ipv4_addr . inet_proto . inet_service; flags interval, timeout; }
add set inet vigil blocked6_svc { type ipv6_addr . inet_proto . inet_service; flags interval, timeout; }
add chain inet vigil block
add chain inet vigil input { type filter hook input priority -5; policy accept; }
add chain inet vigil forward { type filter hook forward priority -5; policy accept; }
add chain inet vigil output { type filter hook output priority -5; policy accept; }
flush chain inet vigil block
flush chain inet vigil input
flush chain inet vigil forward
flush chain inet vigil output
add rule inet vigil block ip saddr @blocked drop
add rule inet vigil block ip daddr @blocked drop
add rule inet vigil block ip6 saddr @blocked6 drop
add rule inet vigil block ip6 daddr @blocked6 drop
add rule inet vigil block ip saddr . meta l4proto . th sport @blocked_svc drop
add rule inet vigil block ip daddr . meta l4proto . th dport @blocked_svc drop
add rule inet vigil block ip6 saddr . meta l4proto . th sport @blocked6_svc drop
add rule inet vigil block ip6 daddr . meta l4proto . th dport @blocked6_svc drop
add rule inet vigil input jump block
add rule inet vigil forward jump block
add rule inet vigil output jump block
`

// elements returns the set and the elements of b (one per protocol).
func (b Block) elements() (set string, elems []string) {
	set = "blocked"
	if b.Prefix.Addr().Is6() {
		set = "blocked6"
	}
	if b.Port == 0 {
		return set, []string{b.Prefix.String()}
	}
	for _, p := range b.Protos {
		elems = append(elems, fmt.Sprintf("%s . %s . %d", b.Prefix, p, b.Port))
	}
	return set + "_svc", elems
}

// BlockScript is the nft script (for nft -f -) of a block. It adds the
// element, deletes it and adds it again with its timeout, in one atomic
// transaction: a block of an address already blocked restarts its
// expiry instead of failing or keeping the old one.
func BlockScript(b Block) string {
	set, elems := b.elements()
	var s strings.Builder
	s.WriteString(blockSetup)
	t := int64(b.Timeout / time.Second)
	for _, e := range elems {
		fmt.Fprintf(&s, "add element inet vigil %s { %s timeout %ds }\n", set, e, t)
		fmt.Fprintf(&s, "delete element inet vigil %s { %s }\n", set, e)
		fmt.Fprintf(&s, "add element inet vigil %s { %s timeout %ds }\n", set, e, t)
	}
	return s.String()
}

// UnblockScript is the nft script of an unblock. It adds the element
// (a no-op when it is there) and deletes it in one transaction, so
// unblocking an address that is not, or no longer, blocked succeeds.
func UnblockScript(b Block) string {
	set, elems := b.elements()
	var s strings.Builder
	s.WriteString(blockSetup)
	for _, e := range elems {
		fmt.Fprintf(&s, "add element inet vigil %s { %s timeout 1s }\n", set, e)
		fmt.Fprintf(&s, "delete element inet vigil %s { %s }\n", set, e)
	}
	return s.String()
}

func (s *System) block(ctx context.Context, p map[string]string, unblock bool) (string, error) {
	b, err := ParseBlock(p, unblock)
	if err != nil {
		return "", err
	}
	what := "block"
	if unblock {
		what = "unblock"
	}
	if s.firewall() != "nft" {
		return "", fmt.Errorf("cannot %s %s: needs nftables (firewall %q)", what, b, s.firewall())
	}
	if !unblock {
		for _, a := range s.ServerAddrs {
			if b.Prefix.Contains(a.Unmap()) {
				return "", fmt.Errorf("cannot block %s: it contains the Vigil server's address %s", b, a)
			}
		}
	}
	script := BlockScript(b)
	if unblock {
		script = UnblockScript(b)
	}
	out, err := s.run(ctx, []string{"nft", "-f", "-"}, script)
	if err != nil {
		return out, fmt.Errorf("cannot %s %s with nftables: %w", what, b, err)
	}
	if unblock {
		return fmt.Sprintf("unblocked %s (nftables table inet vigil)", b), nil
	}
	return fmt.Sprintf("blocked %s for %s (nftables table inet vigil)", b, b.Timeout), nil
}

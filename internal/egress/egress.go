// Package egress guards the server's outbound connections: feeds, TAXII,
// vulnerability sources, webhooks and SMTP. A Policy refuses loopback,
// link-local, private, shared (CGNAT), unspecified, multicast, reserved
// and cloud-metadata addresses unless the operator allows them (config key
// outbound.allow). The check is made on the address actually dialed
// (net.Dialer.Control, after name resolution), so a name that resolves,
// or later rebinds, to a refused address is refused; an HTTP client of a
// Policy checks every redirect the same way, since each new connection is
// dialed through it, and never sends credentials to another origin.
//
// It must not be used for connections the operator points at a fixed
// local service on purpose (the syslog and MQTT connectors, the CLI's
// client of the server's own API).
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrDenied is returned (wrapped) when the policy refuses an address.
var ErrDenied = errors.New("refused by the outbound policy")

// Policy says which addresses outbound connections may reach. The zero
// value and a nil *Policy refuse every special-purpose address and allow
// the rest.
type Policy struct {
	allow []netip.Prefix
	hosts map[string]bool
	// Resolver resolves names for the dialer (nil: the default resolver).
	// Tests set it; the check does not depend on it.
	Resolver *net.Resolver
}

// New makes a policy that also allows the given entries, each a CIDR
// prefix ("10.1.0.0/16"), an address ("127.0.0.1", "::1") or a host name
// ("feeds.corp.example": connections to that name are not checked). "*"
// allows everything. Returns an error naming the first entry that is
// none of these.
func New(allow []string) (*Policy, error) {
	p := &Policy{hosts: map[string]bool{}}
	for _, a := range allow {
		a = strings.TrimSpace(a)
		switch {
		case a == "*":
			p.allow = append(p.allow, netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0"))
		case strings.Contains(a, "/"):
			pfx, err := netip.ParsePrefix(a)
			if err != nil {
				return nil, fmt.Errorf("cannot read outbound allow entry %q: %w", a, err)
			}
			p.allow = append(p.allow, pfx.Masked())
		default:
			if ip, err := netip.ParseAddr(strings.Trim(a, "[]")); err == nil {
				ip = ip.Unmap()
				p.allow = append(p.allow, netip.PrefixFrom(ip, ip.BitLen()))
				continue
			}
			h := strings.TrimSuffix(strings.ToLower(a), ".")
			if h == "" || strings.ContainsAny(h, " :/@") {
				return nil, fmt.Errorf("cannot read outbound allow entry %q: not a CIDR, an address or a host name", a)
			}
			p.hosts[h] = true
		}
	}
	return p, nil
}

// MustNew is New for tests and constants; it panics on a bad entry.
func MustNew(allow ...string) *Policy {
	p, err := New(allow)
	if err != nil {
		panic(err)
	}
	return p
}

// Loopback allows loopback addresses only, besides public ones: for tests
// that fetch from an httptest server.
func Loopback() *Policy { return MustNew("127.0.0.0/8", "::1") }

// denied are the special-purpose ranges besides those netip classifies
// (loopback, private, link-local, multicast, unspecified).
var denied = []struct {
	pfx    netip.Prefix
	reason string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "this network"},
	{netip.MustParsePrefix("100.64.0.0/10"), "shared (CGNAT)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved or broadcast"},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local NAT64"},
	{netip.MustParsePrefix("100::/64"), "discard"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
}

// nat64 and sixToFour are IPv6 prefixes that carry an IPv4 address.
var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// classify says why ip is a special-purpose address, or "" for a public
// one. IPv4 addresses embedded in IPv6 (mapped, NAT64, 6to4) are judged
// as the IPv4 address they carry.
func classify(ip netip.Addr) string {
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64.Contains(ip):
			if r := classify(netip.AddrFrom4([4]byte(b[12:16]))); r != "" {
				return r + " (NAT64)"
			}
		case sixToFour.Contains(ip):
			if r := classify(netip.AddrFrom4([4]byte(b[2:6]))); r != "" {
				return r + " (6to4)"
			}
		}
	}
	switch {
	case !ip.IsValid():
		return "invalid"
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsLoopback():
		return "loopback"
	case ip == netip.AddrFrom4([4]byte{169, 254, 169, 254}), ip == netip.MustParseAddr("fd00:ec2::254"):
		return "cloud metadata"
	case ip.IsLinkLocalUnicast():
		return "link-local (cloud metadata lives here)"
	case ip.IsPrivate():
		return "private"
	case ip.IsMulticast():
		return "multicast"
	}
	for _, d := range denied {
		if d.pfx.Contains(ip) {
			return d.reason
		}
	}
	return ""
}

// Check returns an error wrapping ErrDenied when ip may not be dialed.
func (p *Policy) Check(ip netip.Addr) error {
	ip = ip.Unmap().WithZone("")
	reason := classify(ip)
	if reason == "" {
		return nil
	}
	if p != nil {
		for _, a := range p.allow {
			if a.Contains(ip) {
				return nil
			}
		}
	}
	return fmt.Errorf("address %s is %s: %w (allow it in outbound.allow)", ip, reason, ErrDenied)
}

// control is a net.Dialer Control: it runs after name resolution, on the
// address about to be connected.
func (p *Policy) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("cannot check address %q: %w", address, ErrDenied)
	}
	return p.Check(ap.Addr())
}

// DialContext dials addr (host:port) over network, refusing an address
// the policy does not allow. A host name in the allow list is dialed
// unchecked.
func (p *Policy) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	if p != nil {
		d.Resolver = p.Resolver
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("cannot dial %s: %w", addr, err)
	}
	if p == nil || !p.hosts[strings.TrimSuffix(strings.ToLower(host), ".")] {
		d.Control = p.control
	}
	return d.DialContext(ctx, network, addr)
}

// Transport is an http.Transport that dials through the policy. It uses
// no proxy: a proxy would be dialed instead of the target, whose address
// would then go unchecked.
func (p *Policy) Transport() *http.Transport {
	return &http.Transport{
		DialContext:           p.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// Client is an http.Client of the policy with the given overall timeout
// (0: none). It follows at most 10 redirects, each dialed through the
// policy, and strips credentials once a redirect leaves the first
// request's origin (CheckRedirect).
func (p *Policy) Client(timeout time.Duration) *http.Client {
	return &http.Client{Transport: p.Transport(), Timeout: timeout, CheckRedirect: CheckRedirect}
}

// keep are the headers a request keeps on a redirect to another origin;
// every other one (Authorization, Cookie, a configured token header such
// as X-Api-Key, a signature, and Referer, whose URL may carry a key in its
// query) is dropped.
var keep = map[string]bool{
	"Accept": true, "Accept-Encoding": true, "Accept-Language": true, "User-Agent": true,
	"Content-Type": true, "Content-Length": true, "Idempotency-Key": true,
}

// CheckRedirect is an http.Client CheckRedirect: at most 10 redirects,
// and once any of them has left the origin (scheme, host and port) of the
// first request, only the headers in a short safe list go on. net/http
// alone keeps Authorization to another port of the same host and a custom
// token header to any host.
func CheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	first := origin(via[0].URL)
	left := origin(req.URL) != first
	for _, r := range via[1:] {
		left = left || origin(r.URL) != first
	}
	if left {
		for k := range req.Header {
			if !keep[http.CanonicalHeaderKey(k)] {
				delete(req.Header, k)
			}
		}
		req.URL.User = nil
	}
	return nil
}

// origin is scheme://host:port of u, with the default port made explicit.
func origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Hostname()) + ":" + port
}

// Redact returns a URL without its userinfo (user:password@), for errors
// and answers; a string that is no URL comes back unchanged.
func Redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = nil
	return u.String()
}

var defaultClient = (*Policy)(nil).Client(0)

// DefaultClient is the shared client of the default policy (nothing
// allowed beyond public addresses), for callers given no client.
func DefaultClient() *http.Client { return defaultClient }

package egress

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	f := func(p *Policy, addr string, ok bool) {
		t.Helper()
		err := p.Check(netip.MustParseAddr(addr))
		if ok && err != nil || !ok && !errors.Is(err, ErrDenied) {
			t.Errorf("%s: %v, want allowed %v", addr, err, ok)
		}
	}
	var def *Policy
	for _, a := range []string{"127.0.0.1", "127.9.9.9", "::1", "0.0.0.0", "::", "10.1.2.3", "172.16.0.1", "172.31.255.255",
		"192.168.1.1", "100.64.0.1", "100.100.100.200", "169.254.169.254", "169.254.1.1", "fe80::1", "fd00:ec2::254", "fc00::1",
		"224.0.0.1", "239.255.255.250", "ff02::1", "255.255.255.255", "240.0.0.1", "0.1.2.3", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
		"64:ff9b::a00:1", "2002:a00:1::1", "::127.0.0.1", "198.18.0.1"} {
		f(def, a, false)
	}
	for _, a := range []string{"8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "64:ff9b::808:808"} {
		f(def, a, true)
	}
	p := MustNew("127.0.0.0/8", "10.1.2.3", "fd00::/8")
	f(p, "127.0.0.1", true)
	f(p, "::ffff:127.0.0.1", true)
	f(p, "10.1.2.3", true)
	f(p, "10.1.2.4", false)
	f(p, "fd00:ec2::254", true) // allowed explicitly, inside fd00::/8
	f(p, "169.254.169.254", false)
	f(MustNew("*"), "169.254.169.254", true)
	for _, bad := range []string{"10.0.0.0/33", "a b", "http://x/", "user@host"} {
		if _, err := New([]string{bad}); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
}

func get(t *testing.T, c *http.Client, url string, h map[string]string) (string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), nil
}

// TestLoopbackServer: a real HTTP server on loopback is refused by default
// and reached once loopback, or its host name, is allowed.
func TestLoopbackServer(t *testing.T) {
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		io.WriteString(w, "secret")
	}))
	defer srv.Close()
	_, err := get(t, (*Policy)(nil).Client(5*time.Second), srv.URL, nil)
	if !errors.Is(err, ErrDenied) || hits != 0 {
		t.Fatalf("default policy: %v (hits %d), want ErrDenied and no request", err, hits)
	}
	if !strings.Contains(err.Error(), "loopback") || !strings.Contains(err.Error(), "outbound.allow") {
		t.Errorf("error does not say why and what to do: %v", err)
	}
	for _, allow := range []string{"127.0.0.1", "127.0.0.0/8", "LocalHost"} {
		u := srv.URL
		if allow == "LocalHost" {
			u = strings.Replace(u, "127.0.0.1", "localhost", 1)
		}
		body, err := get(t, MustNew(allow).Client(5*time.Second), u, nil)
		if err != nil || body != "secret" {
			t.Errorf("allow %s: %q, %v", allow, body, err)
		}
	}
}

// TestRedirectToDenied: a redirect from an allowed address to a refused
// one is refused at dial time; the refused server sees no request.
func TestRedirectToDenied(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	hidden := 0
	inner := &httptest.Server{Listener: l, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hidden++ })}}
	inner.Start()
	defer inner.Close()
	// only local targets: were the check broken, nothing may leave the machine
	for _, target := range []string{inner.URL + "/", "http://[::1]:1/", "http://0.0.0.0:1/"} {
		outer := httptest.NewServer(http.RedirectHandler(target, http.StatusFound))
		_, err := get(t, MustNew("127.0.0.1").Client(5*time.Second), outer.URL, nil)
		outer.Close()
		if !errors.Is(err, ErrDenied) {
			t.Errorf("redirect to %s: %v, want ErrDenied", target, err)
		}
	}
	if hidden != 0 {
		t.Errorf("the refused server got %d requests", hidden)
	}
}

// TestRedirectDropsCredentials: a redirect to another origin (here another
// port of the same address, which net/http alone treats as the same host)
// carries neither the bearer token nor a custom token header; a redirect
// within the origin keeps them.
func TestRedirectDropsCredentials(t *testing.T) {
	got := make(chan http.Header, 4)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Clone() }))
	defer other.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("/away", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/feed", http.StatusFound)
	})
	mux.HandleFunc("/here", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/feed", http.StatusFound) })
	mux.HandleFunc("/feed", func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Clone() })
	first := httptest.NewServer(mux)
	defer first.Close()
	c := Loopback().Client(5 * time.Second)
	creds := map[string]string{"Authorization": "Bearer feed-token", "X-Api-Key": "k3y", "Accept": "application/json"}

	if _, err := get(t, c, first.URL+"/away", creds); err != nil {
		t.Fatal(err)
	}
	h := <-got
	if h.Get("Authorization") != "" || h.Get("X-Api-Key") != "" {
		t.Errorf("credentials went to another origin: %v", h)
	}
	if h.Get("Referer") != "" {
		t.Errorf("the first URL went to another origin as Referer: %v", h)
	}
	if h.Get("Accept") != "application/json" {
		t.Errorf("a harmless header was dropped: %v", h)
	}
	// userinfo in the first URL is not sent to another origin either
	if _, err := get(t, c, strings.Replace(first.URL, "http://", "http://u:pw@", 1)+"/away", nil); err != nil {
		t.Fatal(err)
	}
	if h := <-got; h.Get("Authorization") != "" {
		t.Errorf("URL userinfo went to another origin: %v", h)
	}
	if _, err := get(t, c, first.URL+"/here", creds); err != nil {
		t.Fatal(err)
	}
	if h := <-got; h.Get("Authorization") != "Bearer feed-token" || h.Get("X-Api-Key") != "k3y" {
		t.Errorf("a redirect within the origin lost the credentials: %v", h)
	}
}

// TestResolverPrivate: a public-looking name that resolves to a private
// address is refused at dial time, on the address resolved (the dialer's
// Control hook, which runs before connect). The test's dialer stops every
// connect itself, so that a broken check can never send a packet to a
// private address.
func TestResolverPrivate(t *testing.T) {
	var p *Policy
	for _, ip := range []string{"10.0.0.1", "fd00::1", "169.254.169.254"} {
		var checked []string
		d := &net.Dialer{Resolver: fakeResolver(netip.MustParseAddr(ip)), Control: func(network, address string, c syscall.RawConn) error {
			checked = append(checked, address)
			if err := p.control(network, address, c); err != nil {
				return err
			}
			t.Errorf("%s allowed", address)
			return errors.New("the test never connects")
		}}
		_, err := d.DialContext(t.Context(), "tcp", "feeds.example.com:443")
		if !errors.Is(err, ErrDenied) || len(checked) == 0 || checked[0] != netip.AddrPortFrom(netip.MustParseAddr(ip), 443).String() {
			t.Errorf("dial of a name resolving to %s: %v (checked %v), want ErrDenied on the resolved address", ip, err, checked)
		}
	}
}

// fakeResolver answers every query of ip's family (A or AAAA) with ip, and
// the other with no record, from memory (no packet leaves the process).
func fakeResolver(ip netip.Addr) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
		c, s := net.Pipe()
		go func() {
			defer s.Close()
			for {
				var n [2]byte
				if _, err := io.ReadFull(s, n[:]); err != nil {
					return
				}
				q := make([]byte, binary.BigEndian.Uint16(n[:]))
				if _, err := io.ReadFull(s, q); err != nil {
					return
				}
				a := dnsAnswer(q, ip)
				binary.BigEndian.PutUint16(n[:], uint16(len(a)))
				s.Write(append(n[:], a...))
			}
		}()
		return c, nil
	}}
}

// dnsAnswer answers a one-question query with ip when the question asks
// for its family, else with no record.
func dnsAnswer(q []byte, ip netip.Addr) []byte {
	i := 12
	for i < len(q) && q[i] != 0 {
		i += int(q[i]) + 1
	}
	qtype := binary.BigEndian.Uint16(q[i+1:])
	question := q[12 : i+5]
	var rdata []byte
	switch {
	case qtype == 1 && ip.Is4():
		b := ip.As4()
		rdata = b[:]
	case qtype == 28 && ip.Is6():
		b := ip.As16()
		rdata = b[:]
	}
	out := []byte{q[0], q[1], 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0}
	out = append(out, question...)
	if rdata != nil {
		out[7] = 1
		out = append(out, 0xc0, 12)                     // name: pointer to the question
		out = binary.BigEndian.AppendUint16(out, qtype) // type
		out = append(out, 0, 1, 0, 0, 0, 60)            // class IN, TTL 60
		out = binary.BigEndian.AppendUint16(out, uint16(len(rdata)))
		out = append(out, rdata...)
	}
	return out
}

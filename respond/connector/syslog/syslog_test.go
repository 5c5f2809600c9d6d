package syslog_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/respond/connector/syslog"
)

var action = vigil.Action{ID: "act-1", Type: "notify", DeviceID: "cam-1", IncidentID: "inc-1", Playbook: "p",
	State: vigil.ActionSent, Params: map[string]string{"text": "isolated cam|1 a=b", "severity": "8"}}

func check(t *testing.T, msg string) {
	t.Helper()
	if !strings.HasPrefix(msg, "<85>1 ") || !strings.Contains(msg, " vigil - action - CEF:0|Vigil|Vigil|1|notify|isolated cam\\|1 a=b|8|") ||
		!strings.Contains(msg, "msg=isolated cam|1 a\\=b") || !strings.Contains(msg, "cs1=inc-1 cs1Label=incident") ||
		!strings.Contains(msg, "dvchost=cam-1") || !strings.Contains(msg, "externalId=act-1") {
		t.Fatalf("message %q", msg)
	}
}

func TestUDP(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	c, _ := syslog.New(syslog.Options{Addr: pc.LocalAddr().String(), Hostname: "vigil-test"})
	if _, err := c.Execute(context.Background(), action); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	check(t, string(buf[:n]))
}

func TestTCP(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan string, 2)
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		r := bufio.NewReader(conn)
		n, _ := r.ReadString(' ')
		size, _ := strconv.Atoi(strings.TrimSpace(n))
		b := make([]byte, size)
		io.ReadFull(r, b)
		got <- string(b)
	}()
	c, _ := syslog.New(syslog.Options{Network: "tcp", Addr: l.Addr().String()})
	if _, err := c.Execute(context.Background(), action); err != nil {
		t.Fatal(err)
	}
	check(t, <-got)
	l.Close()
	if _, err := c.Execute(context.Background(), action); err == nil {
		t.Fatal("no error with the collector down")
	}
}

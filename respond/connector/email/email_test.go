package email_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/vigil-iot/vigil"
	"github.com/vigil-iot/vigil/internal/egress"
	"github.com/vigil-iot/vigil/respond/connector/email"
)

// mail is what the in-test SMTP server received.
type mail struct {
	from string
	to   []string
	data string
}

// smtpServer is a tiny SMTP server (RFC 5321 subset: EHLO/HELO, MAIL,
// RCPT, DATA, QUIT). reject makes RCPT fail for that address.
func smtpServer(t *testing.T, reject string) (string, <-chan mail) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	out := make(chan mail, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				r := bufio.NewReader(c)
				w := func(s string) { c.Write([]byte(s + "\r\n")) }
				w("220 test ESMTP")
				var m mail
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					line = strings.TrimRight(line, "\r\n")
					cmd := strings.ToUpper(line)
					switch {
					case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
						w("250 test")
					case strings.HasPrefix(cmd, "MAIL FROM:"):
						m.from = strings.Trim(line[10:], "<> ")
						w("250 ok")
					case strings.HasPrefix(cmd, "RCPT TO:"):
						addr := strings.Trim(line[8:], "<> ")
						if addr == reject {
							w("550 no such user")
							continue
						}
						m.to = append(m.to, addr)
						w("250 ok")
					case cmd == "DATA":
						w("354 go on")
						var b strings.Builder
						for {
							l, err := r.ReadString('\n')
							if err != nil {
								return
							}
							if l == ".\r\n" {
								break
							}
							b.WriteString(l)
						}
						m.data = b.String()
						out <- m
						m = mail{}
						w("250 queued")
					case cmd == "QUIT":
						w("221 bye")
						return
					default:
						w("250 ok")
					}
				}
			}(c)
		}
	}()
	return l.Addr().String(), out
}

func TestEmail(t *testing.T) {
	addr, got := smtpServer(t, "nobody@example.org")
	a := vigil.Action{ID: "act-1", Type: "notify", DeviceID: "cam-1", IncidentID: "inc-1",
		Params: map[string]string{"subject": "Camera isolated", "text": "cam-1 isolated\n.dot line"}}
	// the default outbound policy refuses an SMTP server on loopback
	def, _ := email.New(email.Options{Addr: addr, From: "vigil@example.org", To: []string{"soc@example.org"}})
	if _, err := def.Execute(context.Background(), a); !errors.Is(err, egress.ErrDenied) {
		t.Fatalf("SMTP on loopback by default: %v, want ErrDenied", err)
	}
	c, err := email.New(email.Options{Addr: addr, From: "vigil@example.org", To: []string{"soc@example.org"}, Dial: egress.Loopback().DialContext})
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Execute(context.Background(), a)
	if err != nil || res.Acknowledged.IsZero() {
		t.Fatalf("%+v %v", res, err)
	}
	m := <-got
	if m.from != "vigil@example.org" || strings.Join(m.to, ",") != "soc@example.org" ||
		!strings.Contains(m.data, "Subject: Camera isolated\r\n") || !strings.Contains(m.data, "\r\n..dot line\r\n") ||
		!strings.Contains(m.data, "incident: inc-1") {
		t.Fatalf("mail %+v", m)
	}
	a.Params["to"] = "a@example.org, nobody@example.org"
	if _, err := c.Execute(context.Background(), a); err == nil || !strings.Contains(err.Error(), "550") {
		t.Fatalf("rejected recipient: %v", err)
	}
}

package mqtt

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Message is one message received on a subscription.
type Message struct {
	Topic   string
	Payload []byte
}

// Options configures Dial.
type Options struct {
	// Addr is host:port.
	Addr string
	// TLS, when set, connects over TLS with it (ServerName defaults to the
	// host of Addr).
	TLS *tls.Config
	// ClientID identifies the session (the device id).
	ClientID string
	// Username and Password are sent when set.
	Username, Password string
	// KeepAlive is the ping interval (default 60s).
	KeepAlive time.Duration
}

// Client is a connected MQTT client. It is safe for concurrent use.
type Client struct {
	conn net.Conn
	opts Options

	wmu     sync.Mutex // serialises writes
	mu      sync.Mutex
	nextID  uint16
	waiting map[uint16]chan error
	msgs    chan Message
	done    chan struct{}
	err     error
}

// ErrClosed is returned after the connection ended.
var ErrClosed = errors.New("mqtt: connection closed")

// Dial connects and completes the MQTT handshake.
func Dial(ctx context.Context, o Options) (*Client, error) {
	if o.KeepAlive <= 0 {
		o.KeepAlive = time.Minute
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to MQTT broker %s: %w", o.Addr, err)
	}
	if o.TLS != nil {
		cfg := o.TLS.Clone()
		if cfg.ServerName == "" {
			host, _, _ := net.SplitHostPort(o.Addr)
			cfg.ServerName = host
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("cannot connect to MQTT broker %s: %w", o.Addr, err)
		}
		conn = tc
	}
	c := &Client{conn: conn, opts: o, waiting: map[uint16]chan error{}, msgs: make(chan Message, 16), done: make(chan struct{})}
	// CONNECT: protocol name, level 4, flags, keep-alive, payload.
	var vh []byte
	vh = appendString(vh, "MQTT")
	flags := byte(0x02) // clean session
	if o.Username != "" {
		flags |= 0x80
	}
	if o.Password != "" {
		flags |= 0x40
	}
	vh = append(vh, 4, flags)
	vh = binary.BigEndian.AppendUint16(vh, uint16(o.KeepAlive/time.Second))
	vh = appendString(vh, o.ClientID)
	if o.Username != "" {
		vh = appendString(vh, o.Username)
	}
	if o.Password != "" {
		vh = appendString(vh, o.Password)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	} else {
		conn.SetDeadline(time.Now().Add(30 * time.Second))
	}
	if err := c.write(0x10, vh); err != nil {
		conn.Close()
		return nil, fmt.Errorf("cannot connect to MQTT broker: %w", err)
	}
	br := bufio.NewReader(conn)
	typ, body, err := readPacket(br)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("cannot connect to MQTT broker: %w", err)
	}
	if typ>>4 != 2 || len(body) < 2 {
		conn.Close()
		return nil, fmt.Errorf("cannot connect to MQTT broker: expected CONNACK, got packet type %d", typ>>4)
	}
	if body[1] != 0 {
		conn.Close()
		return nil, fmt.Errorf("cannot connect to MQTT broker: refused with return code %d", body[1])
	}
	conn.SetDeadline(time.Time{})
	go c.readLoop(br)
	go c.pingLoop()
	return c, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func (c *Client) write(header byte, body []byte) error {
	pkt := []byte{header}
	n := len(body)
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		pkt = append(pkt, d)
		if n == 0 {
			break
		}
	}
	pkt = append(pkt, body...)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	_, err := c.conn.Write(pkt)
	return err
}

// MaxPacket bounds a received packet.
const MaxPacket = 4 << 20

func readPacket(br *bufio.Reader) (byte, []byte, error) {
	typ, err := br.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mul := 0, 1
	for i := 0; ; i++ {
		d, err := br.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(d&0x7f) * mul
		if d&0x80 == 0 {
			break
		}
		mul *= 128
		if i == 3 {
			return 0, nil, errors.New("malformed remaining length")
		}
	}
	if n > MaxPacket {
		return 0, nil, fmt.Errorf("packet of %d bytes is over the limit", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(br, body); err != nil {
		return 0, nil, err
	}
	return typ, body, nil
}

func (c *Client) readLoop(br *bufio.Reader) {
	var err error
	defer func() { c.shutdown(err) }()
	for {
		c.conn.SetReadDeadline(time.Now().Add(c.opts.KeepAlive * 3 / 2))
		var typ byte
		var body []byte
		typ, body, err = readPacket(br)
		if err != nil {
			return
		}
		switch typ >> 4 {
		case 3: // PUBLISH
			qos := (typ >> 1) & 3
			if len(body) < 2 {
				err = errors.New("short PUBLISH")
				return
			}
			tl := int(binary.BigEndian.Uint16(body))
			if len(body) < 2+tl {
				err = errors.New("short PUBLISH topic")
				return
			}
			topic, rest := string(body[2:2+tl]), body[2+tl:]
			if qos > 0 {
				if len(rest) < 2 {
					err = errors.New("short PUBLISH packet id")
					return
				}
				id := rest[:2]
				rest = rest[2:]
				if qos == 1 {
					if err = c.write(0x40, id); err != nil { // PUBACK
						return
					}
				}
			}
			select {
			case c.msgs <- Message{Topic: topic, Payload: rest}:
			case <-c.done:
				return
			}
		case 4, 9: // PUBACK, SUBACK
			if len(body) < 2 {
				err = errors.New("short acknowledgement")
				return
			}
			id := binary.BigEndian.Uint16(body)
			var ackErr error
			if typ>>4 == 9 && len(body) > 2 && body[2] == 0x80 {
				ackErr = errors.New("subscription refused by the broker")
			}
			c.mu.Lock()
			ch := c.waiting[id]
			delete(c.waiting, id)
			c.mu.Unlock()
			if ch != nil {
				ch <- ackErr
			}
		case 13: // PINGRESP
		}
	}
}

func (c *Client) pingLoop() {
	t := time.NewTicker(c.opts.KeepAlive)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			if err := c.write(0xC0, nil); err != nil {
				c.shutdown(err)
				return
			}
		}
	}
}

func (c *Client) shutdown(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.done:
		return
	default:
	}
	if err == nil {
		err = ErrClosed
	}
	c.err = err
	close(c.done)
	c.conn.Close()
	for id, ch := range c.waiting {
		ch <- ErrClosed
		delete(c.waiting, id)
	}
}

// Done is closed when the connection ended; Err then says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Messages delivers the messages of the subscriptions.
func (c *Client) Messages() <-chan Message { return c.msgs }

func (c *Client) register() (uint16, chan error, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.done:
		return 0, nil, ErrClosed
	default:
	}
	c.nextID++
	if c.nextID == 0 {
		c.nextID = 1
	}
	ch := make(chan error, 1)
	c.waiting[c.nextID] = ch
	return c.nextID, ch, nil
}

func (c *Client) await(ctx context.Context, id uint16, ch chan error) error {
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.waiting, id)
		c.mu.Unlock()
		return ctx.Err()
	case <-c.done:
		return ErrClosed
	}
}

// Publish sends a message; at QoS 1 it returns once the broker
// acknowledged it.
func (c *Client) Publish(ctx context.Context, topic string, payload []byte, qos1 bool) error {
	body := appendString(nil, topic)
	header := byte(0x30)
	if !qos1 {
		return c.write(header, append(body, payload...))
	}
	id, ch, err := c.register()
	if err != nil {
		return err
	}
	body = binary.BigEndian.AppendUint16(body, id)
	if err := c.write(header|0x02, append(body, payload...)); err != nil {
		return fmt.Errorf("cannot publish to %s: %w", topic, err)
	}
	if err := c.await(ctx, id, ch); err != nil {
		return fmt.Errorf("cannot publish to %s: %w", topic, err)
	}
	return nil
}

// Subscribe subscribes to a topic filter at QoS 1.
func (c *Client) Subscribe(ctx context.Context, filter string) error {
	id, ch, err := c.register()
	if err != nil {
		return err
	}
	body := binary.BigEndian.AppendUint16(nil, id)
	body = appendString(body, filter)
	body = append(body, 1)
	if err := c.write(0x82, body); err != nil {
		return fmt.Errorf("cannot subscribe to %s: %w", filter, err)
	}
	if err := c.await(ctx, id, ch); err != nil {
		return fmt.Errorf("cannot subscribe to %s: %w", filter, err)
	}
	return nil
}

// Close disconnects.
func (c *Client) Close() error {
	_ = c.write(0xE0, nil) // DISCONNECT
	c.shutdown(ErrClosed)
	return nil
}

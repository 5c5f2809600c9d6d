package export

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATSOptions configure a NATS sink.
type NATSOptions struct {
	// URL of the NATS server (credentials in the URL or Token).
	URL   string
	Token string
	// Subject the alerts are published to (default "vigil.alerts.export").
	Subject string
	// JetStream publishes with JetStream and waits for each message's
	// acknowledgement: the subject must belong to a stream. Without it a
	// message counts as accepted when the server received it (a flush),
	// which says nothing of subscribers.
	JetStream bool
	// Name of the connection (default "vigil-export").
	Name string
}

// NATS publishes each alert's document as one message. The header
// Nats-Msg-Id carries the alert id, so a stream with a duplicate window
// drops resends.
type NATS struct {
	o  NATSOptions
	nc *nats.Conn
	js jetstream.JetStream
}

var _ Sink = (*NATS)(nil)

// NewNATS checks the options; it connects on the first Send.
func NewNATS(o NATSOptions) (*NATS, error) {
	if o.URL == "" {
		return nil, errors.New("cannot use a NATS sink without a URL")
	}
	if o.Subject == "" {
		o.Subject = "vigil.alerts.export"
	}
	if o.Name == "" {
		o.Name = "vigil-export"
	}
	return &NATS{o: o}, nil
}

func (n *NATS) connect() error {
	if n.nc != nil {
		return nil
	}
	opts := []nats.Option{nats.Name(n.o.Name)}
	if n.o.Token != "" {
		opts = append(opts, nats.Token(n.o.Token))
	}
	nc, err := nats.Connect(n.o.URL, opts...)
	if err != nil {
		return fmt.Errorf("cannot connect to NATS: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return fmt.Errorf("cannot use JetStream: %w", err)
	}
	n.nc, n.js = nc, js
	return nil
}

// Send publishes docs in order.
func (n *NATS) Send(ctx context.Context, docs []Doc) error {
	if err := n.connect(); err != nil {
		return err
	}
	for i, d := range docs {
		m := nats.NewMsg(n.o.Subject)
		m.Header.Set(nats.MsgIdHdr, d.ID)
		m.Data = d.JSON
		var err error
		if n.o.JetStream {
			_, err = n.js.PublishMsg(ctx, m)
		} else {
			err = n.nc.PublishMsg(m)
		}
		if err != nil {
			if i == 0 {
				return fmt.Errorf("cannot publish to %s: %w", n.o.Subject, err)
			}
			ie := &ItemErrors{}
			for j := i; j < len(docs); j++ {
				ie.Retry = append(ie.Retry, j)
			}
			return ie
		}
	}
	if !n.o.JetStream {
		if err := n.nc.FlushTimeout(10 * time.Second); err != nil {
			return fmt.Errorf("cannot flush to NATS: %w", err)
		}
	}
	return nil
}

// Close closes the connection.
func (n *NATS) Close() error {
	if n.nc != nil {
		n.nc.Close()
		n.nc = nil
	}
	return nil
}

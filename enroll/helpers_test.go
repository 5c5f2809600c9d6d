package enroll

import (
	"net"

	"github.com/vigil-iot/vigil/agent/httpc"
)

type httpcClient = httpc.Client

func netListen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

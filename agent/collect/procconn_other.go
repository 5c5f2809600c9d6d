//go:build !linux

package collect

import "errors"

type procConnector struct{}

func openProcConnector(Env) (*procConnector, error) {
	return nil, errors.New("the proc connector is Linux only")
}

func (*procConnector) drain() ([]procExec, int, error) { return nil, 0, nil }

func (*procConnector) Close() error { return nil }

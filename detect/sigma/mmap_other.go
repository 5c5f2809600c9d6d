//go:build !(linux || darwin || freebsd)

package sigma

import "io"

func mapFile(io.Reader) ([]byte, func(), bool) { return nil, nil, false }

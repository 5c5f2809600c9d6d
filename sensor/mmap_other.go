//go:build !linux

package sensor

import (
	"errors"
	"os"
)

// mapFile is not supported here: files are read as streams.
func mapFile(*os.File, int64) ([]byte, func(), error) {
	return nil, nil, errors.ErrUnsupported
}

//go:build linux

package sigma

import "syscall"

// mapPopulate pre-faults the mapping in one go.
const mapPopulate = syscall.MAP_POPULATE

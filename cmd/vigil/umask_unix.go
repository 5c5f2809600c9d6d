//go:build unix

package main

import "syscall"

// setUmask sets the process's file mode creation mask and returns a
// function that restores the previous one.
func setUmask(mask int) (restore func()) {
	old := syscall.Umask(mask)
	return func() { syscall.Umask(old) }
}

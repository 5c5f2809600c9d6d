//go:build !linux

package main

// dropBinaryPages does nothing outside Linux.
func dropBinaryPages() int64 { return 0 }

//go:build darwin || freebsd

package sigma

const mapPopulate = 0

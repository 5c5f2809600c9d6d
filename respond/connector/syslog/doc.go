// Package syslog is the notification connector that forwards an action to
// a SIEM as a syslog message (RFC 5424) carrying a CEF record, over UDP
// or TCP (octet-counted framing, RFC 6587). It carries out "notify"
// actions and keeps one connection per Execute (no state).
package syslog

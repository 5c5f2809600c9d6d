// Package stix imports STIX 2.0 and 2.1 bundles: it turns indicator objects
// into feeds.Indicators through a small STIX patterning parser.
//
// The parser supports what can be matched on a single event: comparisons
// with = , IN and ISSUBSET over ipv4-addr, ipv6-addr (addresses and CIDR),
// domain-name, url, file hashes and file names, and network-traffic
// src_ref/dst_ref values and ports, combined with AND and OR inside an
// observation and OR between observations. Anything else (LIKE, MATCHES,
// !=, other object types, FOLLOWEDBY, AND between observations, WITHIN /
// REPEATS / START qualifiers) is rejected with an error naming the indicator.
//
// It does no I/O beyond reading the reader it is given.
package stix

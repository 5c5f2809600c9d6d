// Package plain imports indicator lists: one indicator a line (addresses,
// prefixes, domains, URLs, hashes; "#" starts a comment; "ip:port" keeps
// the port as a condition) and CSV files with a column mapping
// (feeds.CSVMapping). It does no I/O beyond the reader it is given.
package plain

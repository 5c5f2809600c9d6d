// Package http decodes HTTP/1.0 and HTTP/1.1 from a reassembled TCP
// connection into vigil.Events of kind "http", one per request and per
// response, with fields under http.* (see docs/fields.md): method, host,
// path, query, user agent, status. Bodies are skipped (Content-Length and
// chunked); they are never kept. Malformed traffic yields anomaly events.
//
// The parser reads the sensor's buffers in place and does no I/O. (It is
// named http but does not shadow net/http: it never imports it.)
package http

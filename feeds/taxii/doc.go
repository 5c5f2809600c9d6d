// Package taxii is a TAXII 2.1 client: server discovery, API roots,
// collections, and objects paged with limit/next and filtered with
// added_after, with a bearer token or basic auth. Fetch turns a
// collection's STIX objects into indicators through package stix.
//
// It keeps no state: the caller keeps the last X-TAXII-Date-Added-Last it
// got back and passes it as added_after on the next refresh.
package taxii

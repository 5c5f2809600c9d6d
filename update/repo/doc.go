// Package repo fetches update artifacts from the repositories the server
// is configured with (update.repositories): each is the URL of an index
// in Vigil's own JSON format (ParseIndex; docs/response.md), which a
// vendor mirror publishes. A Fetcher reads the index, skips the entries
// already stored (same product, version and SHA-256), downloads the new
// ones within their size bound, refuses any whose bytes do not have the
// SHA-256 the index gives, and stores the others through update.Add, the
// path an upload takes, so that they are signed with the update key.
//
// Every fetch goes through the HTTP client it is given, which the node
// makes from the outbound policy (internal/egress, outbound.allow). It
// does not decide which devices get an artifact (remediate does), and it
// trusts nothing in an index beyond what the SHA-256 check proves: the
// index is fetched over HTTPS from a URL the operator configured.
package repo

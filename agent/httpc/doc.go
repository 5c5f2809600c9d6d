// Package httpc is the agent's minimal HTTP/1.1 client over TLS: one
// persistent connection, Content-Length and chunked bodies, deadlines from
// the context. It exists because net/http costs about 0.9 MB of binary on
// MIPS, and the agent must stay under 7 MB stripped on every target; the
// agent only ever speaks to one server, with small requests.
//
// It uses the standard library only. It is not a general HTTP client: no
// proxies, no redirects, no HTTP/2, no 1xx other than 100 Continue.
package httpc

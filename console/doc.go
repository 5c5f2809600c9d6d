// Package console is Vigil's web console: server-rendered HTML pages
// (html/template) over the store and the REST API, served by `vigil serve`
// on the API's listener under "/". Every asset is embedded; the pages work
// offline, without a CDN, and with one small script of our own (live
// updates over server-sent events, confirmations).
//
// Reads come from the store (paged, indexed queries only) or from the API
// in-process; every write is a call of the API in-process
// (web.WithCaller), so that the console's permissions and audit records
// are the API's, route for route.
//
// It owns login sessions (API token or user account), CSRF tokens, the
// Content-Security-Policy, and the user accounts' API routes
// (UserRoutes). It must not hold business logic of its own: what a button
// does is what the API route it calls does.
package console

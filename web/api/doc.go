// Package api holds the JSON shapes of Vigil's REST API that are not domain
// types: list pages, error bodies, detail views and token requests. The
// server (package web) writes them and the Go client (package client) reads
// them, so both sides agree by construction.
//
// It holds types only: no handlers, no HTTP calls.
package api

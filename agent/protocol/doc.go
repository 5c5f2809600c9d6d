// Package protocol holds the paths and the request and answer bodies of
// the agent's enrollment, renewal and command endpoints, shared by the
// agent and the server's enroll package. Reports are in package wire,
// signed commands in agent/command.
//
// The package uses the standard library only.
package protocol

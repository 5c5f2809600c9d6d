// Package fleet runs many virtual agents in one process, for demos and
// load tests: each enrolls with its own enrollment token, key and client
// certificate, then reports over HTTPS with mutual TLS exactly as
// vigil-agent does (the same wire reports, gzip, the same endpoints).
//
// It keeps no connection open between two reports of an agent, so ten
// thousand agents cost their certificates and a scheduler, not ten
// thousand TLS sessions. It does not make up report contents: the caller
// passes a Report function (the sim package's fleet, for example).
//
// The package uses the standard library, wire and the agent's packages
// only; it is not linked into the vigil-agent binary.
package fleet

// Package pki owns Vigil's own certificate authority: it creates the CA on
// first start (ECDSA P-256, ca.crt and ca.key in the data dir), loads it on
// later starts, issues the server certificate the HTTPS API presents, and
// signs device client certificates from certificate requests (agent
// enrollment).
//
// The package only reads and writes its files and signs certificates. It
// does not decide who may enroll, does not listen on the network and keeps
// no revocation list: enrollment policy belongs to the caller.
package pki

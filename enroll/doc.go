// Package enroll is the server side of the device agent's channel:
// enrollment tokens (single use, with a time to live and a device class),
// enrollment and certificate renewal (CSRs signed by the pki CA), the
// certificate revocation list, device authentication by client
// certificate, the command-signing key, and the command queue agents
// long-poll, with their results.
//
// It owns the file command.key in the data directory (a single node on
// SQLite; with PostgreSQL the server shares the key through the store,
// sealed). The command queue and results are kept in a store.Commands,
// shared by every node; the commands.json of an older data dir is
// imported once (ImportQueueFile).
// Enrollment tokens and revocations are kept in the store (StoreTokens,
// StoreRevocations), shared by every node on one database; the file
// forms (TokenStore, Revocations) remain for tests, for `vigil ctl
// enroll-token create --data-dir` and for importing an older data dir. It does not store events or actions: results go to
// the Options.OnResult callback, and accepted reports to the ingest
// handler the caller passes in.
//
// The device endpoints live under /api/v1 but authenticate by client
// certificate (or by enrollment token), not by bearer token, so they are
// served by Handler.Front in front of the web server rather than as
// web routes; the administrative endpoints (tokens, revocation, issuing
// commands) are ordinary web routes (AdminRoutes).
package enroll

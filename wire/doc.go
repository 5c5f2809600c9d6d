// Package wire is the protocol between a device agent and the Vigil server:
// the versioned agent Report, its JSON and XML codecs, its validation rules,
// and the Response the server answers with.
//
// The agent binary imports this package, so it must stay small: it uses the
// standard library only and never imports the root vigil package or any
// other package of the repository. Server-side conversion of a Report into
// vigil.Events lives in ingest/agent, not here.
//
// The schema and its rules are documented for people in
// docs/agent-protocol.md; a test decodes the examples of that document, so
// the two cannot drift apart.
//
// Decoding and validation are separate steps. DecodeReport fails only when
// the bytes cannot be read as a report at all (syntax, a value of the wrong
// type, an unknown version, a DOCTYPE in XML); the whole report is then
// rejected. A report that decodes is then checked by Filter, which drops the
// invalid parts alone and says why, with a path such as
// "events[3].time: missing":
//
//   - an invalid envelope (version, device_id, time) rejects the whole report;
//   - an invalid health or inventory section drops that section;
//   - an invalid interface drops the interface, an invalid listener drops
//     the listener, an invalid security event drops that event;
//
// and everything else goes through.
package wire

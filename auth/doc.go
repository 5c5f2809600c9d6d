// Package auth owns API tokens and roles: who may call Vigil's API and what
// each role may do.
//
// A token is a random secret ("vgl_" + 43 base64url characters) shown once
// when it is created; only its SHA-256 hash is kept, with a name, a role and
// the times it was created and last used. FileStore keeps them in one JSON
// file in the data dir (tokens.json, mode 0600, replaced atomically).
//
// The role table (Grants) says which Permission each Role holds; the web
// package asks Role.Can for every route. This package does not speak HTTP,
// does not log token secrets, and never stores a plaintext token.
package auth

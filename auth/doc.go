// Package auth owns API tokens and roles: who may call Vigil's API and what
// each role may do.
//
// A token is a random secret ("vgl_" + 43 base64url characters) shown once
// when it is created; only its SHA-256 hash is kept, with a name, a role and
// the times it was created and last used. StoreTokens keeps them in the
// store (store.Tokens), shared by every node on one database, without a
// cache, so a revocation holds on every node at once; `vigil serve` uses
// it. FileStore keeps them in one JSON file (tokens.json of older data
// dirs, mode 0600, replaced atomically); StoreTokens.ImportFile moves such
// a file into the store once.
//
// The role table (Grants) says which Permission each Role holds; the web
// package asks Role.Can for every route. This package does not speak HTTP,
// does not log token secrets, and never stores a plaintext token.
package auth

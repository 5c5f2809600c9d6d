// Package update is the one path by which an update artifact enters the
// store, whether an admin uploads it (web.UpdateRoutes) or a repository
// provides it (update/repo): Add checks its labels and size, hashes its
// bytes and signs them with the server's update key (never the command
// key), then stores it through store.Artifacts.
//
// It does not fetch anything, decide which devices get an artifact
// (remediate does), or deliver it to agents.
package update

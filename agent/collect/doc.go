// Package collect gathers what a device agent reports: the operating system
// and firmware, installed packages, health (cpu, memory, disk, temperature,
// uptime), network interfaces, listening sockets and connections, and the
// security events of process starts, logins, file changes and new
// listeners.
//
// Collectors read /proc, /sys and log files under a configurable root, so
// they test against testdata trees; they shell out only for a configured
// firmware or metrics command. The package uses the standard library and
// wire only: it is linked into the agent binary and must never import a
// server package.
//
// Event kinds and fields (ECS names, as ingest/agent and the rules read
// them) are documented in docs/agent.md.
package collect

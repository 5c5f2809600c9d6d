// Package command is the agent's remote-command channel: the signed
// command format (shared with the server, which signs), the verification
// pipeline the agent runs before anything executes, the persisted replay
// cache, the local policy, and the executors of each action.
//
// A command runs only when all of these hold, in this order, and a
// refusal names the first that failed (Refusal.Reason):
//
//  1. its Ed25519 signature by the server's command key is valid
//     (bad_signature; malformed when it cannot be read at all);
//  2. it names this device (wrong_device);
//  3. it has not expired and its lifetime is within MaxTTL (expired);
//  4. its nonce was never seen, across restarts (replayed);
//  5. the local policy file allows the action and its target
//     (not_allowed).
//
// The firewall executors: isolate and restore replace a table inet
// vigil_isolate, or, when nft is missing or fails, the chain VIGIL_ISOLATE
// of iptables and ip6tables (one iptables-restore --noflush per family,
// undone when either fails); block and unblock
// add and remove elements, each with its own timeout, of the nftables sets
// of table inet vigil (blocked, blocked6, and blocked_svc, blocked6_svc
// for address . protocol . port), dropped in input, forward and output.
// Sets with interval, timeout and concatenations need Linux 5.6 or later;
// block has no iptables fallback.
//
// The package uses the standard library only; it is linked into the agent
// and imported by the server's enroll package for Sign. It must never
// import a server package.
package command

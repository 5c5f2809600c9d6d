// Package agent is the connector that carries out device actions through
// the Vigil agent's signed command channel: isolate, restore,
// kill_process, stop_service, restart_service, update, set_param, reboot,
// and the gateway firewall's block / unblock (an nftables set with
// per-element expiry on a gateway running the agent).
//
// It depends only on the small CommandSender interface (the server side of
// the channel, enroll.Handler, behind a two-line adapter) and learns the
// outcome from HandleResult (wired to enroll.Options.OnResult). It does not
// sign, queue or deliver commands itself.
package agent

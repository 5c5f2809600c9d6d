// Package webhook is the notification connector that POSTs an action as
// JSON to an HTTP endpoint: a generic Vigil document, or a
// Slack-compatible {"text": ...} message (Slack, Mattermost, Rocket.Chat
// incoming webhooks). It carries out "notify" actions and nothing else,
// and keeps no state.
package webhook

// Package email is the notification connector that mails an action over
// SMTP (net/smtp: STARTTLS when the server offers it, PLAIN auth when
// credentials are set). It carries out "notify" actions only and keeps no
// state.
package email

// Package revoke is the connector that revokes a device's Vigil
// certificate ("revoke_certificate"): every certificate issued to it until
// now is refused and the device must enroll again with a new token. It
// calls a Revoker (enroll.Revocations) and keeps no state.
package revoke

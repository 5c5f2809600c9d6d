package vigil

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Error codes. Each maps to one HTTP status in web/.
const (
	ECONFLICT     = "conflict"     // the object exists or changed meanwhile
	EINTERNAL     = "internal"     // a bug or a failed dependency
	EINVALID      = "invalid"      // the input is wrong
	ENOTFOUND     = "not_found"    // no such object
	EUNAUTHORIZED = "unauthorized" // no valid credentials
	EFORBIDDEN    = "forbidden"    // credentials valid, role insufficient
	ETOOLARGE     = "too_large"    // the body is over its limit
	EBUSY         = "busy"         // back-pressure: try again later
)

// Error is an application error: a code for machines and a message for people.
type Error struct {
	Code    string
	Message string
}

// Error returns the message.
func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the message of the first *Error in err's chain, or a
// generic message for internal errors (their detail goes to the log only).
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// JSONErrorAt says where an encoding/json error is (its byte offset, and
// for a wrong type the field), without quoting the input: what a user
// needs to find a mistake in a file or a body, and nothing of its
// content.
func JSONErrorAt(err error) error {
	var (
		se  *json.SyntaxError
		ute *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("invalid JSON at byte %d: %w", se.Offset, err)
	case errors.As(err, &ute):
		return fmt.Errorf("field %s at byte %d: want %s, have %s", ute.Field, ute.Offset, ute.Type, ute.Value)
	}
	return err
}

package kafkatransport

import "errors"

// PermanentError marks an error that retrying cannot fix; the Subscriber
// dead-letters the message at once.
type PermanentError struct {
	Err error
}

func (e *PermanentError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err as a PermanentError; nil stays nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err or an error it wraps is a PermanentError.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// UnavailableError marks an error of a dependency that is down (a
// database, a vector store): the message is fine and retrying will work
// once the dependency is back, so the Subscriber retries it with backoff
// without a bound — the partition waits — and never dead-letters it.
// Dead letters are for poison messages, not outages.
type UnavailableError struct {
	Err error
}

func (e *UnavailableError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *UnavailableError) Unwrap() error { return e.Err }

// Unavailable wraps err as an UnavailableError; nil stays nil.
func Unavailable(err error) error {
	if err == nil {
		return nil
	}
	return &UnavailableError{Err: err}
}

// IsUnavailable reports whether err or an error it wraps is an
// UnavailableError.
func IsUnavailable(err error) bool {
	var u *UnavailableError
	return errors.As(err, &u)
}

// Decision tells the Subscriber what to do with a message whose handling
// failed.
type Decision int

// Decisions of an ErrorPolicy.
const (
	// Retry handles the message again after a backoff.
	Retry Decision = iota
	// DeadLetter writes the message to the dead-letter topic and commits it.
	DeadLetter
	// Skip commits the message without dead-lettering it.
	Skip
)

func (d Decision) String() string {
	switch d {
	case Retry:
		return "retry"
	case DeadLetter:
		return "dead-letter"
	case Skip:
		return "skip"
	}
	return "unknown"
}

// ErrorPolicy decides what happens to a message whose handling failed with
// err on attempt (counting from 1) out of maxAttempts.
type ErrorPolicy func(err error, attempt, maxAttempts int) Decision

// DefaultErrorPolicy dead-letters permanent errors at once, retries
// unavailable ones until they succeed, and retries the others until
// maxAttempts, then dead-letters them.
func DefaultErrorPolicy(err error, attempt, maxAttempts int) Decision {
	switch {
	case IsPermanent(err):
		return DeadLetter
	case IsUnavailable(err):
		return Retry
	case attempt >= maxAttempts:
		return DeadLetter
	}
	return Retry
}

package token

import "time"

// SetClock makes v read the time from now (tests move it).
func SetClock(v *Verifier, now func() time.Time) { v.now = now }

// CachedTokens is how many verified tokens v remembers.
func CachedTokens(v *Verifier) int {
	if v.verified == nil {
		return 0
	}
	return v.verified.Len()
}

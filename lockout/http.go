package lockout

import (
	"errors"
	"math"
	"net/http"
	"strconv"
)

// WriteTooManyRequests answers a refused attempt: when err is (or wraps) a
// *LockedError it writes 429 Too Many Requests with a Retry-After header
// in whole seconds, rounded up, and reports true; for any other error it
// writes nothing and reports false. A hard lock gets no Retry-After, since
// waiting will not lift it. The body is the same generic text for every
// lock, so it says nothing about the account or which counter refused.
func WriteTooManyRequests(w http.ResponseWriter, err error) bool {
	var le *LockedError
	if !errors.As(err, &le) {
		return false
	}
	if !le.Hard {
		secs := int64(math.Ceil(le.RetryAfter.Seconds()))
		w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
	}
	http.Error(w, "too many attempts; try again later", http.StatusTooManyRequests)
	return true
}

package platform

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"
)

// Faults are the deliberate failures a release test injects (FAULT_ERROR_RATE,
// FAULT_LATENCY_MS) to prove that canary analysis and rollback work. They
// apply to business endpoints only, never to /health, /ready or /metrics.
type Faults struct {
	ErrorRate float64       // fraction of requests, 0..1, that answer 500
	Latency   time.Duration // added before every request is handled

	// random returns a number in [0, 1); nil means math/rand/v2. Tests set it.
	random func() float64
}

// Enabled reports whether any fault is configured.
func (f Faults) Enabled() bool { return f.ErrorRate > 0 || f.Latency > 0 }

// Middleware applies the faults in front of next.
func (f Faults) Middleware(next http.Handler) http.Handler {
	if !f.Enabled() {
		return next
	}
	random := f.random
	if random == nil {
		random = rand.Float64
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.Latency > 0 {
			timer := time.NewTimer(f.Latency)
			select {
			case <-timer.C:
			case <-r.Context().Done():
				timer.Stop()
				// The client is gone; the status is for the metrics only.
				WriteError(w, http.StatusServiceUnavailable, "request canceled during injected latency")
				return
			}
		}
		// random() is in [0, 1), so a rate of 1 fails every request and 0 none.
		if f.ErrorRate > 0 && random() < f.ErrorRate {
			w.Header().Set("X-Fault-Injected", "error")
			WriteError(w, http.StatusInternalServerError,
				fmt.Sprintf("injected fault: FAULT_ERROR_RATE=%s", formatFloat(f.ErrorRate)))
			return
		}
		next.ServeHTTP(w, r)
	})
}

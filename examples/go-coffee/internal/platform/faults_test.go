package platform

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// sequence returns the given numbers in turn, as the fault's random source.
func sequence(values ...float64) func() float64 {
	i := 0
	return func() float64 {
		v := values[i%len(values)]
		i++
		return v
	}
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	WriteJSON(w, http.StatusOK, map[string]string{"ok": "yes"})
})

func TestFaultErrorRate(t *testing.T) {
	tests := []struct {
		name   string
		rate   float64
		random []float64
		want   []int
	}{
		{"off", 0, []float64{0}, []int{200, 200, 200}},
		{"always", 1, []float64{0, 0.5, 0.999999}, []int{500, 500, 500}},
		{"half", 0.5, []float64{0.1, 0.9, 0.49, 0.5}, []int{500, 200, 500, 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Faults{ErrorRate: tt.rate, random: sequence(tt.random...)}.Middleware(okHandler)
			for i, want := range tt.want {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
				if rec.Code != want {
					t.Errorf("request %d: status %d, want %d", i, rec.Code, want)
				}
				if want == http.StatusInternalServerError {
					if rec.Header().Get("X-Fault-Injected") != "error" {
						t.Errorf("request %d: no X-Fault-Injected header", i)
					}
					if msg := errorBody(t, rec).Error; !strings.Contains(msg, "FAULT_ERROR_RATE") {
						t.Errorf("request %d: error %q does not name the knob", i, msg)
					}
				}
			}
		})
	}
}

func TestFaultErrorRateDefaultRandom(t *testing.T) {
	// With the real random source, a rate of 1 must fail every request.
	h := Faults{ErrorRate: 1}.Middleware(okHandler)
	for range 50 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
		if rec.Code != http.StatusInternalServerError {
			t.Fatalf("status %d, want 500", rec.Code)
		}
	}
}

func TestFaultLatency(t *testing.T) {
	const latency = 40 * time.Millisecond
	h := Faults{Latency: latency}.Middleware(okHandler)
	start := time.Now()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
	if elapsed := time.Since(start); elapsed < latency {
		t.Errorf("answered after %s, want at least %s", elapsed, latency)
	}
	if rec.Code != http.StatusOK {
		t.Errorf("status %d, want 200", rec.Code)
	}
}

func TestFaultLatencyStopsWhenClientLeaves(t *testing.T) {
	h := Faults{Latency: time.Minute}.Middleware(okHandler)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil).WithContext(ctx))
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("waited %s for a client that had left", elapsed)
	}
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", rec.Code)
	}
}

func TestFaultsEnabled(t *testing.T) {
	tests := []struct {
		faults Faults
		want   bool
	}{
		{Faults{}, false},
		{Faults{ErrorRate: 0.01}, true},
		{Faults{Latency: time.Millisecond}, true},
	}
	for _, tt := range tests {
		if got := tt.faults.Enabled(); got != tt.want {
			t.Errorf("%+v.Enabled() = %v, want %v", tt.faults, got, tt.want)
		}
	}
}

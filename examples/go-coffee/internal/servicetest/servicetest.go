// Package servicetest holds the helpers the services' tests share: a service
// built as main runs it (minus the listener), requests through it, and JSON
// answers decoded and checked. Import it from _test.go files only, so the
// testing package never reaches a service binary.
package servicetest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gocoffee.example/go-coffee/internal/platform"
)

// Env is a getenv that reads env; a nil map is an empty environment.
func Env(env map[string]string) func(string) string {
	return func(key string) string { return env[key] }
}

// New is the whole service as main runs it, minus the listener: routes reads
// its settings from env and registers the business endpoints behind
// platform.NewServer, without fault injection. A routes error fails t.
func New(t testing.TB, name, version string,
	routes func(mux *http.ServeMux, getenv func(string) string) error, env map[string]string,
) http.Handler {
	t.Helper()
	mux := http.NewServeMux()
	if err := routes(mux, Env(env)); err != nil {
		t.Fatalf("routes: %v", err)
	}
	return platform.NewServer(name, version, platform.Faults{}, mux)
}

// Do sends method target to h and returns what it answered. A non-empty body
// goes with Content-Type: application/json.
func Do(h http.Handler, method, target, body string) *httptest.ResponseRecorder {
	return DoWithHeader(h, method, target, body, nil)
}

// DoWithHeader is Do with extra request headers, set after Content-Type.
func DoWithHeader(h http.Handler, method, target, body string, header map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// Decode unmarshals the recorded body into a T; a body that is not one fails t.
func Decode[T any](t testing.TB, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("body %q: %v", rec.Body.String(), err)
	}
	return v
}

// WantError checks that rec answered status with a JSON error whose message
// contains wantError and, when wantProblem is not empty, a problem that
// contains wantProblem. A wrong status stops t; the rest are reported errors.
func WantError(t testing.TB, rec *httptest.ResponseRecorder, status int, wantError, wantProblem string) {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status = %d %s, want %d", rec.Code, rec.Body, status)
	}
	body := Decode[platform.ErrorBody](t, rec)
	if !strings.Contains(body.Error, wantError) {
		t.Errorf("error = %q, want it to contain %q", body.Error, wantError)
	}
	if wantProblem != "" && !strings.Contains(strings.Join(body.Problems, "\n"), wantProblem) {
		t.Errorf("problems = %q, want one containing %q", body.Problems, wantProblem)
	}
}

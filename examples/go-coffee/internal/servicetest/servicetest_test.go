package servicetest

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"

	"gocoffee.example/go-coffee/internal/platform"
)

// recorder is a testing.TB that records failures instead of failing the test
// that checks a helper. Fatalf stops the calling goroutine like the real one.
type recorder struct {
	testing.TB // nil: a helper calling anything else panics
	mu         sync.Mutex
	fatals     []string
	errs       []string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.fatals = append(r.fatals, fmt.Sprintf(format, args...))
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// check runs f with a fresh recorder on its own goroutine, as the testing
// package runs a test, and returns the recorder once f returns or stops.
func check(f func(t testing.TB)) *recorder {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r
}

// echo answers 200 with the request's method, path, Content-Type and X-Test.
func echo(mux *http.ServeMux, getenv func(string) string) error {
	if getenv("BROKEN") != "" {
		return errors.New("BROKEN is set")
	}
	mux.Handle("/echo", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		platform.WriteJSON(w, http.StatusOK, map[string]string{
			"method":       r.Method,
			"path":         r.URL.Path,
			"content_type": r.Header.Get("Content-Type"),
			"x_test":       r.Header.Get("X-Test"),
			"setting":      getenv("SETTING"),
		})
	}))
	return nil
}

func TestEnv(t *testing.T) {
	getenv := Env(map[string]string{"A": "1"})
	if getenv("A") != "1" || getenv("B") != "" {
		t.Errorf("Env: A=%q B=%q, want 1 and empty", getenv("A"), getenv("B"))
	}
	if Env(nil)("A") != "" {
		t.Error("Env(nil) is not empty")
	}
}

func TestNewServesLikeMain(t *testing.T) {
	h := New(t, "svc", "1.2.3", echo, map[string]string{"SETTING": "on"})

	health := Decode[platform.Health](t, Do(h, http.MethodGet, "/health", ""))
	if health != (platform.Health{Status: "ok", Service: "svc", Version: "1.2.3"}) {
		t.Errorf("/health = %+v", health)
	}
	got := Decode[map[string]string](t, Do(h, http.MethodPost, "/echo", "{}"))
	if got["method"] != "POST" || got["setting"] != "on" {
		t.Errorf("/echo = %v, want POST with the setting from env", got)
	}
	// The platform's catch-all answers unknown paths.
	WantError(t, Do(h, http.MethodGet, "/nowhere", ""), http.StatusNotFound, "no route for GET /nowhere", "")
}

func TestNewFailsOnRoutesError(t *testing.T) {
	r := check(func(tb testing.TB) {
		New(tb, "svc", "dev", echo, map[string]string{"BROKEN": "yes"})
		tb.Errorf("New returned after routes failed")
	})
	if len(r.fatals) != 1 || r.fatals[0] != "routes: BROKEN is set" || len(r.errs) != 0 {
		t.Errorf("fatals %q, errors %q, want one fatal naming the routes error", r.fatals, r.errs)
	}
}

func TestDo(t *testing.T) {
	h := New(t, "svc", "dev", echo, nil)
	tests := []struct {
		name, body      string
		header          map[string]string
		wantContentType string
		wantXTest       string
	}{
		{"no body", "", nil, "", ""},
		{"JSON body", `{"a":1}`, nil, "application/json", ""},
		{"extra header", "", map[string]string{"X-Test": "yes"}, "", "yes"},
		{"header overrides the content type", "x", map[string]string{"Content-Type": "text/plain"}, "text/plain", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := DoWithHeader(h, http.MethodPut, "/echo", tt.body, tt.header)
			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d %s", rec.Code, rec.Body)
			}
			got := Decode[map[string]string](t, rec)
			if got["method"] != "PUT" || got["path"] != "/echo" ||
				got["content_type"] != tt.wantContentType || got["x_test"] != tt.wantXTest {
				t.Errorf("server saw %v, want Content-Type %q and X-Test %q", got, tt.wantContentType, tt.wantXTest)
			}
		})
	}
	if got := Decode[map[string]string](t, Do(h, http.MethodPost, "/echo", "{}")); got["content_type"] != "application/json" {
		t.Errorf("Do with a body sent Content-Type %q", got["content_type"])
	}
}

func TestDecodeFailsOnNonJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	rec.WriteString("not json")
	r := check(func(tb testing.TB) {
		Decode[map[string]string](tb, rec)
		tb.Errorf("Decode returned")
	})
	if len(r.fatals) != 1 || !strings.Contains(r.fatals[0], `body "not json"`) || len(r.errs) != 0 {
		t.Errorf("fatals %q, errors %q, want one fatal quoting the body", r.fatals, r.errs)
	}
}

func TestWantError(t *testing.T) {
	answer := func(status int, body platform.ErrorBody) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		platform.WriteJSON(rec, status, body)
		return rec
	}
	invalid := answer(422, platform.ErrorBody{Error: "order is not valid", Problems: []string{"a", "customer is required"}})
	tests := []struct {
		name                   string
		rec                    *httptest.ResponseRecorder
		status                 int
		wantError, wantProblem string
		wantFatals, wantErrs   int
	}{
		{"all match", invalid, 422, "not valid", "customer", 0, 0},
		{"no problem asked", invalid, 422, "order", "", 0, 0},
		{"wrong status stops", invalid, 400, "not valid", "", 1, 0},
		{"wrong error", invalid, 422, "unknown", "", 0, 1},
		{"missing problem", invalid, 422, "not valid", "items", 0, 1},
		{"both wrong", invalid, 422, "unknown", "items", 0, 2},
		{"no problems at all", answer(400, platform.ErrorBody{Error: "bad"}), 400, "bad", "x", 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := check(func(tb testing.TB) { WantError(tb, tt.rec, tt.status, tt.wantError, tt.wantProblem) })
			if len(r.fatals) != tt.wantFatals || len(r.errs) != tt.wantErrs {
				t.Errorf("fatals %q, errors %q, want %d and %d", r.fatals, r.errs, tt.wantFatals, tt.wantErrs)
			}
		})
	}
}

package platform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// testMux is a small business mux: POST /orders answers 202.
func testMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/orders", Methods{http.MethodPost: func(w http.ResponseWriter, _ *http.Request) {
		WriteJSON(w, http.StatusAccepted, map[string]string{"status": "accepted"})
	}})
	return mux
}

func serve(t *testing.T, h http.Handler, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec
}

func decodeHealth(t *testing.T, rec *httptest.ResponseRecorder) Health {
	t.Helper()
	var h Health
	if err := json.Unmarshal(rec.Body.Bytes(), &h); err != nil {
		t.Fatalf("body %q is not health JSON: %v", rec.Body.String(), err)
	}
	return h
}

func TestServerEndpoints(t *testing.T) {
	// Every business request fails: the operational endpoints must not.
	s := NewServer("producer", "1.2.3", Faults{ErrorRate: 1}, testMux())
	tests := []struct {
		method, target string
		wantStatus     int
		wantHealth     string // status field of /health and /ready bodies
	}{
		{http.MethodGet, "/health", 200, "ok"},
		{http.MethodHead, "/health", 200, ""},
		{http.MethodGet, "/ready", 503, "starting"}, // Serve has not run
		{http.MethodGet, "/metrics", 200, ""},
		{http.MethodPost, "/health", 405, ""},
		{http.MethodPost, "/orders", 500, ""},
		{http.MethodGet, "/anything", 500, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			rec := serve(t, s, tt.method, tt.target)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body)
			}
			if tt.wantHealth != "" {
				want := Health{Status: tt.wantHealth, Service: "producer", Version: "1.2.3"}
				if got := decodeHealth(t, rec); got != want {
					t.Errorf("body = %+v, want %+v", got, want)
				}
			}
		})
	}
}

func TestServerHealthBodyIsExact(t *testing.T) {
	s := NewServer("api-gateway", "2.0.0", Faults{}, testMux())
	rec := serve(t, s, http.MethodGet, "/health")
	want := `{"status":"ok","service":"api-gateway","version":"2.0.0"}` + "\n"
	if rec.Body.String() != want {
		t.Errorf("body = %q, want %q", rec.Body.String(), want)
	}
}

func TestServerCountsBusinessRequestsOnly(t *testing.T) {
	s := NewServer("producer", "dev", Faults{}, testMux())
	for _, r := range []struct{ method, target string }{
		{http.MethodPost, "/orders"},
		{http.MethodPost, "/orders"},
		{http.MethodGet, "/orders"},
		{http.MethodGet, "/nope"},
		{http.MethodGet, "/health"},
		{http.MethodGet, "/ready"},
	} {
		serve(t, s, r.method, r.target)
	}
	if rec := serve(t, s, http.MethodGet, "/nope"); rec.Code != 404 || !strings.Contains(errorBody(t, rec).Error, "/nope") {
		t.Errorf("unknown path: %d %s, want a JSON 404 naming the path", rec.Code, rec.Body)
	}

	exp, err := parseExposition(serve(t, s, http.MethodGet, "/metrics").Body.String())
	if err != nil {
		t.Fatal(err)
	}
	base := map[string]string{"service": "producer", "version": "dev"}
	series := func(code, method, path string) map[string]string {
		return map[string]string{"service": "producer", "version": "dev", "code": code, "method": method, "path": path}
	}
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"http_requests_total", series("202", "POST", "/orders"), 2},
		{"http_requests_total", series("405", "GET", "/orders"), 1},
		{"http_requests_total", series("404", "GET", UnmatchedRoute), 2},
		{"http_request_duration_seconds_count", base, 5},
	}
	for _, tt := range tests {
		if got, _ := exp.find(tt.name, tt.labels); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	for _, s := range exp.samples {
		if p := s.labels["path"]; p == "/health" || p == "/ready" || p == "/metrics" {
			t.Errorf("operational endpoint counted: %s%v", s.name, s.labels)
		}
	}
}

// get fetches url with a deadline.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestServeShutsDownGracefully(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, _ *http.Request) {
		close(entered)
		<-release
		WriteJSON(w, http.StatusOK, map[string]string{"done": "yes"})
	})
	s := NewServer("consumer", "dev", Faults{}, mux)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln) }()

	if code, body := get(t, base+"/ready"); code != http.StatusOK || !strings.Contains(body, `"status":"ok"`) {
		t.Fatalf("/ready = %d %s, want 200 ok", code, body)
	}

	type result struct {
		code int
		body string
	}
	slow := make(chan result, 1)
	go func() {
		resp, err := http.Get(base + "/slow")
		if err != nil {
			slow <- result{0, err.Error()}
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		slow <- result{resp.StatusCode, string(body)}
	}()
	<-entered

	stop() // what SIGTERM does in Main
	eventually(t, "/ready to report stopping", func() bool {
		rec := serve(t, s, http.MethodGet, "/ready")
		return rec.Code == http.StatusServiceUnavailable && decodeHealth(t, rec).Status == "stopping"
	})
	select {
	case err := <-served:
		t.Fatalf("Serve returned (%v) while a request was in flight", err)
	default:
	}

	close(release)
	if r := <-slow; r.code != http.StatusOK || !strings.Contains(r.body, `"done":"yes"`) {
		t.Errorf("in-flight request got %d %q, want it to finish with 200", r.code, r.body)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(ShutdownTimeout):
		t.Fatal("Serve did not return after shutdown")
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("the listener still accepts connections after shutdown")
	}
}

func TestServeFailsOnAClosedListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	err = NewServer("producer", "dev", Faults{}, testMux()).Serve(context.Background(), ln)
	if err == nil || !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("Serve = %v, want an error naming the address", err)
	}
}

func TestRun(t *testing.T) {
	routesErr := errors.New("ORDER_CAPACITY is bad")
	tests := []struct {
		name    string
		env     map[string]string
		routes  func(*http.ServeMux, func(string) string) error
		wantErr string // "" means Run must return nil once the context ends
	}{
		{"serves until canceled", map[string]string{"LISTEN_ADDR": "127.0.0.1:0"}, nil, ""},
		{"bad fault knob", map[string]string{"FAULT_ERROR_RATE": "lots"}, nil, `FAULT_ERROR_RATE="lots"`},
		{"bad listen address", map[string]string{"LISTEN_ADDR": "127.0.0.1:notaport"}, nil, `LISTEN_ADDR="127.0.0.1:notaport"`},
		{
			"routes fail", map[string]string{"LISTEN_ADDR": "127.0.0.1:0"},
			func(*http.ServeMux, func(string) string) error { return routesErr },
			routesErr.Error(),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // Run returns as soon as it has started
			err := Run(ctx, Service{Name: "producer", Version: "dev", Routes: tt.routes}, mapEnv(tt.env))
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("Run: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Run = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestRunAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = Run(context.Background(), Service{Name: "producer"}, mapEnv(map[string]string{"LISTEN_ADDR": ln.Addr().String()}))
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("LISTEN_ADDR=%q", ln.Addr().String())) {
		t.Errorf("Run = %v, want an error naming LISTEN_ADDR and its value", err)
	}
}

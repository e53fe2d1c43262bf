package platform

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseExpositionRejectsBrokenInput(t *testing.T) {
	const okHist = "# TYPE h histogram\n" +
		"h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n"
	tests := []struct {
		name string
		text string
	}{
		{"no trailing newline", "# TYPE c counter\nc 1"},
		{"sample without TYPE", "c 1\n"},
		{"bad metric name", "# TYPE 1c counter\n1c 1\n"},
		{"bad value", "# TYPE c counter\nc one\n"},
		{"unquoted label", "# TYPE c counter\nc{a=b} 1\n"},
		{"bad escape", "# TYPE c counter\nc{a=\"\\t\"} 1\n"},
		{"unterminated label", "# TYPE c counter\nc{a=\"x} 1\n"},
		{"duplicate label", "# TYPE c counter\nc{a=\"x\",a=\"y\"} 1\n"},
		{"duplicate series", "# TYPE c counter\nc{a=\"x\"} 1\nc{a=\"x\"} 2\n"},
		{"two TYPEs", "# TYPE c counter\n# TYPE c gauge\nc 1\n"},
		{"unknown type", "# TYPE c thing\nc 1\n"},
		{"stray comment", "# hello\n# TYPE c counter\nc 1\n"},
		{"interleaved families", "# TYPE a gauge\n# TYPE b gauge\na 1\nb 1\na{x=\"1\"} 1\n"},
		{"histogram without +Inf", "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n"},
		{"histogram not cumulative", "# TYPE h histogram\n" +
			"h_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n"},
		{"histogram count mismatch", strings.Replace(okHist, "h_count 2", "h_count 3", 1)},
		{"histogram without sum", strings.Replace(okHist, "h_sum 3\n", "", 1)},
		{"histogram le out of order", "# TYPE h histogram\n" +
			"h_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n"},
	}
	if _, err := parseExposition(okHist); err != nil {
		t.Fatalf("a valid histogram was rejected: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseExposition(tt.text); err == nil {
				t.Errorf("accepted:\n%s", tt.text)
			}
		})
	}
}

func TestMetricsExposition(t *testing.T) {
	m := NewMetrics("producer", `1.2.3-"quoted"\path`)
	m.Observe(http.MethodPost, "/orders", 202, 3*time.Millisecond)
	m.Observe(http.MethodPost, "/orders", 202, 5*time.Millisecond) // on a bucket bound: le is inclusive
	m.Observe(http.MethodPost, "/orders", 422, 70*time.Millisecond)
	m.Observe(http.MethodGet, "/orders/{id}", 200, 7*time.Second)
	m.Observe("BREW", UnmatchedRoute, 404, time.Millisecond)

	var buf bytes.Buffer
	n, err := m.WriteTo(&buf)
	if err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	if n != int64(buf.Len()) {
		t.Errorf("WriteTo reported %d bytes, wrote %d", n, buf.Len())
	}
	text := buf.String()
	exp, err := parseExposition(text)
	if err != nil {
		t.Fatalf("exposition does not parse: %v\n%s", err, text)
	}

	wantTypes := map[string]string{
		"build_info":                    "gauge",
		"http_requests_total":           "counter",
		"http_request_duration_seconds": "histogram",
	}
	for name, typ := range wantTypes {
		if exp.types[name] != typ {
			t.Errorf("TYPE of %s = %q, want %q", name, exp.types[name], typ)
		}
		if exp.help[name] == "" {
			t.Errorf("%s has no HELP", name)
		}
	}

	base := map[string]string{"service": "producer", "version": `1.2.3-"quoted"\path`}
	with := func(extra ...string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for i := 0; i < len(extra); i += 2 {
			out[extra[i]] = extra[i+1]
		}
		return out
	}
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"build_info", base, 1},
		{"http_requests_total", with("code", "202", "method", "POST", "path", "/orders"), 2},
		{"http_requests_total", with("code", "422", "method", "POST", "path", "/orders"), 1},
		{"http_requests_total", with("code", "200", "method", "GET", "path", "/orders/{id}"), 1},
		{"http_requests_total", with("code", "404", "method", "OTHER", "path", UnmatchedRoute), 1},
		{"http_request_duration_seconds_bucket", with("le", "0.005"), 3},
		{"http_request_duration_seconds_bucket", with("le", "0.01"), 3},
		{"http_request_duration_seconds_bucket", with("le", "0.1"), 4},
		{"http_request_duration_seconds_bucket", with("le", "5"), 4},
		{"http_request_duration_seconds_bucket", with("le", "+Inf"), 5},
		{"http_request_duration_seconds_count", base, 5},
	}
	for _, tt := range tests {
		got, ok := exp.find(tt.name, tt.labels)
		if !ok {
			t.Errorf("no sample %s%v in:\n%s", tt.name, tt.labels, text)
			continue
		}
		if got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	sum, _ := exp.find("http_request_duration_seconds_sum", base)
	if want := 7.079; sum < want-1e-9 || sum > want+1e-9 {
		t.Errorf("_sum = %v, want %v", sum, want)
	}

	var les []string
	for _, s := range exp.samples {
		if s.name == "http_request_duration_seconds_bucket" {
			les = append(les, s.labels["le"])
		}
	}
	wantLes := "0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,+Inf"
	if got := strings.Join(les, ","); got != wantLes {
		t.Errorf("buckets = %s, want %s", got, wantLes)
	}

	checkWithPromtool(t, text)
}

// checkWithPromtool also feeds the exposition to Prometheus' own parser when
// promtool (Debian package prometheus) is installed. The strict Go parser
// above always runs, so the test means the same without it.
func checkWithPromtool(t *testing.T, text string) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool is not on PATH: checked with the Go parser only")
		return
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("promtool check metrics rejected the exposition: %v\n%s\n%s", err, out, text)
	}
}

func TestMetricsEmptyExpositionParses(t *testing.T) {
	var buf bytes.Buffer
	if _, err := NewMetrics("consumer", "dev").WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	exp, err := parseExposition(buf.String())
	if err != nil {
		t.Fatalf("exposition does not parse: %v\n%s", err, buf.String())
	}
	got, ok := exp.find("http_request_duration_seconds_count", map[string]string{"service": "consumer", "version": "dev"})
	if !ok || got != 0 {
		t.Errorf("_count = %v (found %v), want 0", got, ok)
	}
	checkWithPromtool(t, buf.String())
}

func TestMetricsServeHTTP(t *testing.T) {
	rec := httptest.NewRecorder()
	NewMetrics("auth-service", "dev").ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("status = %d, want 200", rec.Code)
	}
	if got := rec.Header().Get("Content-Type"); got != ExpositionContentType {
		t.Errorf("Content-Type = %q, want %q", got, ExpositionContentType)
	}
	if !strings.Contains(rec.Body.String(), `build_info{service="auth-service",version="dev"} 1`) {
		t.Errorf("body has no build_info:\n%s", rec.Body.String())
	}
}

func TestMetricsConcurrentObserve(t *testing.T) {
	m := NewMetrics("api-gateway", "dev")
	const workers, each = 8, 250
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				m.Observe(http.MethodGet, "/api/v1/menu", 200+w%2, time.Duration(i)*time.Microsecond)
				if i%50 == 0 {
					_, _ = m.WriteTo(&bytes.Buffer{})
				}
			}
		}()
	}
	wg.Wait()
	var buf bytes.Buffer
	if _, err := m.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	exp, err := parseExposition(buf.String())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := exp.find("http_request_duration_seconds_count", map[string]string{"service": "api-gateway", "version": "dev"})
	if got != workers*each {
		t.Errorf("_count = %v, want %d", got, workers*each)
	}
}

func TestStatusRecorder(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    int
	}{
		{"implicit 200", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("x")) }, 200},
		{"nothing written", func(http.ResponseWriter, *http.Request) {}, 200},
		{"explicit", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }, 418},
		{"first status wins", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusCreated)
			w.WriteHeader(http.StatusInternalServerError)
		}, 201},
		{"1xx is not final", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusAccepted)
		}, 202},
		{"status after body is ignored", func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte("x"))
			w.WriteHeader(http.StatusInternalServerError)
		}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMetrics("svc", "dev")
			h := m.Middleware(func(*http.Request) string { return "/x" }, tt.handler)
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/x", nil))
			m.mu.Lock()
			defer m.mu.Unlock()
			key := requestKey{code: tt.want, method: http.MethodGet, path: "/x"}
			if m.requests[key] != 1 {
				t.Errorf("recorded %v, want one request with code %d", m.requests, tt.want)
			}
		})
	}
	rec := &statusRecorder{ResponseWriter: httptest.NewRecorder()}
	if rec.Unwrap() == nil {
		t.Error("Unwrap returned nil")
	}
}

func TestRouteLabel(t *testing.T) {
	mux := http.NewServeMux()
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	mux.Handle("/orders", noop)
	mux.Handle("GET /orders/{id}", noop)
	mux.Handle("/static/", noop)
	mux.Handle(catchAll, noop)
	label := RouteLabel(mux, catchAll)
	tests := []struct {
		method, target, want string
	}{
		{http.MethodPost, "/orders", "/orders"},
		{http.MethodGet, "/orders/ord_0123456789abcdef", "/orders/{id}"},
		{http.MethodGet, "/static/a/b.css", "/static/"},
		{http.MethodGet, "/wp-login.php", UnmatchedRoute},
		{http.MethodGet, "/", UnmatchedRoute},
	}
	for _, tt := range tests {
		if got := label(httptest.NewRequest(tt.method, tt.target, nil)); got != tt.want {
			t.Errorf("%s %s: label %q, want %q", tt.method, tt.target, got, tt.want)
		}
	}
}

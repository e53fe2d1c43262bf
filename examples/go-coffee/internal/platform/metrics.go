package platform

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DurationBuckets are the upper bounds (seconds) of the latency histogram;
// +Inf is implied.
var DurationBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

// ExpositionContentType is the Prometheus text format, version 0.0.4.
const ExpositionContentType = "text/plain; version=0.0.4; charset=utf-8"

// UnmatchedRoute is the path label of requests that matched no route, so
// scanners probing random URLs cannot create one series per URL.
const UnmatchedRoute = "unmatched"

type requestKey struct {
	code   int
	method string
	path   string
}

// Metrics counts business requests and their latency, and writes them in the
// Prometheus text exposition format. It is written by hand because the module
// may only use the standard library. Safe for concurrent use.
type Metrics struct {
	service string
	version string

	mu       sync.Mutex
	requests map[requestKey]uint64
	buckets  []uint64 // per bucket, not cumulative; the last one is +Inf
	sum      float64
	count    uint64
}

// NewMetrics returns empty metrics labelled with service and version.
func NewMetrics(service, version string) *Metrics {
	return &Metrics{
		service:  service,
		version:  version,
		requests: make(map[requestKey]uint64),
		buckets:  make([]uint64, len(DurationBuckets)+1),
	}
}

// Observe records one finished request. path is the route pattern, never the
// raw URL path, to keep the number of series bounded.
func (m *Metrics) Observe(method, path string, code int, elapsed time.Duration) {
	seconds := elapsed.Seconds()
	// Index of the first bucket whose bound holds the value; len means +Inf.
	bucket, _ := slices.BinarySearch(DurationBuckets, seconds)

	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[requestKey{code: code, method: normalizeMethod(method), path: path}]++
	m.buckets[bucket]++
	m.sum += seconds
	m.count++
}

// knownMethods keeps the method label bounded: anything else counts as OTHER.
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
	http.MethodConnect: true, http.MethodTrace: true,
}

func normalizeMethod(method string) string {
	if knownMethods[method] {
		return method
	}
	return "OTHER"
}

// WriteTo writes all metrics in the Prometheus text exposition format, series
// sorted so the output is stable.
func (m *Metrics) WriteTo(w io.Writer) (int64, error) {
	m.mu.Lock()
	keys := make([]requestKey, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	counts := make(map[requestKey]uint64, len(m.requests))
	for k, v := range m.requests {
		counts[k] = v
	}
	buckets := slices.Clone(m.buckets)
	sum, count := m.sum, m.count
	m.mu.Unlock()

	slices.SortFunc(keys, func(a, b requestKey) int {
		return cmp.Or(
			cmp.Compare(a.path, b.path),
			cmp.Compare(a.method, b.method),
			cmp.Compare(a.code, b.code),
		)
	})

	cw := &countingWriter{w: bufio.NewWriter(w)}
	base := fmt.Sprintf(`service="%s",version="%s"`, escapeLabel(m.service), escapeLabel(m.version))

	fmt.Fprintln(cw, "# HELP build_info Build information of the running service; the value is always 1.")
	fmt.Fprintln(cw, "# TYPE build_info gauge")
	fmt.Fprintf(cw, "build_info{%s} 1\n", base)

	fmt.Fprintln(cw, "# HELP http_requests_total Business HTTP requests answered, by status code, method and route.")
	fmt.Fprintln(cw, "# TYPE http_requests_total counter")
	for _, k := range keys {
		fmt.Fprintf(cw, "http_requests_total{%s,code=\"%d\",method=\"%s\",path=\"%s\"} %d\n",
			base, k.code, escapeLabel(k.method), escapeLabel(k.path), counts[k])
	}

	fmt.Fprintln(cw, "# HELP http_request_duration_seconds Latency of business HTTP requests.")
	fmt.Fprintln(cw, "# TYPE http_request_duration_seconds histogram")
	var cumulative uint64
	for i, n := range buckets {
		cumulative += n
		le := "+Inf"
		if i < len(DurationBuckets) {
			le = formatFloat(DurationBuckets[i])
		}
		fmt.Fprintf(cw, "http_request_duration_seconds_bucket{%s,le=\"%s\"} %d\n", base, le, cumulative)
	}
	fmt.Fprintf(cw, "http_request_duration_seconds_sum{%s} %s\n", base, formatFloat(sum))
	fmt.Fprintf(cw, "http_request_duration_seconds_count{%s} %d\n", base, count)

	if cw.err == nil {
		cw.err = cw.w.Flush()
	}
	return cw.n, cw.err
}

// ServeHTTP answers GET /metrics.
func (m *Metrics) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", ExpositionContentType)
	w.Header().Set("Cache-Control", "no-store")
	_, _ = m.WriteTo(w)
}

// Middleware records every request that passes through next. route names the
// route pattern a request matches (see RouteLabel).
func (m *Metrics) Middleware(route func(*http.Request) string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		m.Observe(r.Method, route(r), rec.status, time.Since(start))
	})
}

// RouteLabel returns the path of the mux pattern that serves r ("/orders/{id}"),
// or UnmatchedRoute when only the catch-all pattern matches.
func RouteLabel(mux *http.ServeMux, catchAll string) func(*http.Request) string {
	return func(r *http.Request) string {
		_, pattern := mux.Handler(r)
		if pattern == "" || pattern == catchAll {
			return UnmatchedRoute
		}
		// Patterns may start with a method or a host ("GET /x", "host/x"):
		// the method has its own label and hosts are not used here.
		if i := strings.IndexByte(pattern, '/'); i > 0 {
			pattern = pattern[i:]
		}
		return pattern
	}
}

// statusRecorder remembers the status code a handler answered.
type statusRecorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wroteHeader && code >= 200 {
		// 1xx informational headers are not the final status.
		r.status = code
		r.wroteHeader = true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController (used by httputil.ReverseProxy to
// flush) reach the real writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

type countingWriter struct {
	w   *bufio.Writer
	n   int64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// escapeLabel escapes a label value as the exposition format requires.
func escapeLabel(v string) string { return labelEscaper.Replace(v) }

func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

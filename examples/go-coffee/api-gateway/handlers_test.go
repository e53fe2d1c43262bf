package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"gocoffee.example/go-coffee/internal/order"
	"gocoffee.example/go-coffee/internal/platform"
	"gocoffee.example/go-coffee/internal/servicetest"
)

// newGateway is the whole service as main runs it, minus the listener.
func newGateway(t *testing.T, env map[string]string) http.Handler {
	t.Helper()
	return servicetest.New(t, "api-gateway", version, routes, env)
}

// seen is one request an upstream received.
type seen struct {
	method, path, query, body, contentType, forwardedFor string
}

// upstreamServer is an HTTP server on 127.0.0.1 that records what it
// receives and answers status with a JSON body naming the path.
func upstreamServer(t *testing.T, status int) (*httptest.Server, func() []seen) {
	t.Helper()
	var (
		mu   sync.Mutex
		reqs []seen
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		reqs = append(reqs, seen{r.Method, r.URL.Path, r.URL.RawQuery, string(body),
			r.Header.Get("Content-Type"), r.Header.Get("X-Forwarded-For")})
		mu.Unlock()
		w.Header().Set("X-Upstream", "yes")
		platform.WriteJSON(w, status, map[string]string{"path": r.URL.Path})
	}))
	t.Cleanup(srv.Close)
	return srv, func() []seen {
		mu.Lock()
		defer mu.Unlock()
		return append([]seen(nil), reqs...)
	}
}

func TestMenu(t *testing.T) {
	rec := servicetest.Do(newGateway(t, nil), http.MethodGet, "/api/v1/menu", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("menu = %d %s", rec.Code, rec.Body)
	}
	menu := servicetest.Decode[menuBody](t, rec)
	if menu.Currency != "USD" || len(menu.Items) != len(order.Menu()) {
		t.Errorf("menu = %+v", menu)
	}
	if cents := menu.Items[0].PriceCents["small"]; cents <= 0 {
		t.Errorf("first drink has no small price: %+v", menu.Items[0])
	}
}

func TestForwards(t *testing.T) {
	producer, producerSeen := upstreamServer(t, http.StatusAccepted)
	consumer, consumerSeen := upstreamServer(t, http.StatusOK)
	h := newGateway(t, map[string]string{
		"PRODUCER_URL": producer.URL,
		"CONSUMER_URL": consumer.URL + "/base/", // a path prefix is kept
	})
	const orderBody = `{"customer":"Ada","items":[{"drink":"latte","size":"small","quantity":1}]}`

	tests := []struct {
		name, method, target, body string
		wantStatus                 int
		upstream                   func() []seen
		want                       seen
	}{
		{"place an order", http.MethodPost, "/api/v1/orders", orderBody, 202, producerSeen,
			seen{method: "POST", path: "/orders", body: orderBody, contentType: "application/json"}},
		{"look up an order", http.MethodGet, "/api/v1/orders/ord_0123456789abcdef", "", 202, producerSeen,
			seen{method: "GET", path: "/orders/ord_0123456789abcdef"}},
		{"list processed", http.MethodGet, "/api/v1/processed?limit=5", "", 200, consumerSeen,
			seen{method: "GET", path: "/base/processed", query: "limit=5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(tt.upstream())
			rec := servicetest.Do(h, tt.method, tt.target, tt.body)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d %s, want the upstream's %d", rec.Code, rec.Body, tt.wantStatus)
			}
			if rec.Header().Get("X-Upstream") != "yes" {
				t.Error("the upstream's headers were not passed back")
			}
			reqs := tt.upstream()
			if len(reqs) != before+1 {
				t.Fatalf("upstream got %d requests, want 1", len(reqs)-before)
			}
			got := reqs[len(reqs)-1]
			if got.forwardedFor == "" {
				t.Error("no X-Forwarded-For header upstream")
			}
			got.forwardedFor = ""
			if got != tt.want {
				t.Errorf("upstream saw %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRejectsWithoutCallingUpstream(t *testing.T) {
	producer, producerSeen := upstreamServer(t, http.StatusOK)
	h := newGateway(t, map[string]string{"PRODUCER_URL": producer.URL})
	tests := []struct {
		name, method, target string
		wantStatus           int
		wantError            string
	}{
		{"malformed order ID", http.MethodGet, "/api/v1/orders/..%2f", 400, "is not valid"},
		{"short order ID", http.MethodGet, "/api/v1/orders/ord_1", 400, `order ID "ord_1" is not valid`},
		{"DELETE an order", http.MethodDelete, "/api/v1/orders/ord_0123456789abcdef", 405, "use GET"},
		{"GET the collection", http.MethodGet, "/api/v1/orders", 405, "use POST"},
		{"POST the menu", http.MethodPost, "/api/v1/menu", 405, "use GET"},
		{"consumer not configured", http.MethodGet, "/api/v1/processed", 503, "start the gateway with CONSUMER_URL"},
		{"unknown path", http.MethodGet, "/api/v2/menu", 404, "no route"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := servicetest.Do(h, tt.method, tt.target, "")
			servicetest.WantError(t, rec, tt.wantStatus, tt.wantError, "")
		})
	}
	if n := len(producerSeen()); n != 0 {
		t.Errorf("the producer got %d requests, want none", n)
	}
}

func TestUnreachableUpstream(t *testing.T) {
	producer, _ := upstreamServer(t, http.StatusOK)
	url := producer.URL
	producer.Close() // nothing listens there any more
	h := newGateway(t, map[string]string{"PRODUCER_URL": url})

	rec := servicetest.Do(h, http.MethodPost, "/api/v1/orders", `{}`)
	if rec.Code != http.StatusBadGateway {
		t.Fatalf("status = %d %s, want 502", rec.Code, rec.Body)
	}
	if got := servicetest.Decode[platform.ErrorBody](t, rec).Error; !strings.Contains(got, "the producer at "+url+" did not answer") {
		t.Errorf("error = %q, want it to name the producer and its URL", got)
	}
}

func TestRoutesRejectBadUpstreamURLs(t *testing.T) {
	tests := []struct{ variable, value string }{
		{"PRODUCER_URL", "127.0.0.1:8082"},
		{"PRODUCER_URL", "ftp://127.0.0.1"},
		{"PRODUCER_URL", "http://"},
		{"CONSUMER_URL", "http://127.0.0.1:8083/?x=1"},
		{"CONSUMER_URL", "http://user:pw@127.0.0.1:8083"},
		{"CONSUMER_URL", "http://[::1"},
	}
	for _, tt := range tests {
		t.Run(tt.variable+"="+tt.value, func(t *testing.T) {
			err := routes(http.NewServeMux(), servicetest.Env(map[string]string{tt.variable: tt.value}))
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.variable+"=") || !strings.Contains(err.Error(), "like http://127.0.0.1:8082") {
				t.Errorf("error %q does not name the variable and a valid example", err)
			}
			if strings.Contains(err.Error(), ":pw@") {
				t.Errorf("error %q repeats a password", err)
			}
		})
	}
}

package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"gocoffee.example/go-coffee/internal/order"
	"gocoffee.example/go-coffee/internal/platform"
)

// UpstreamTimeout is how long the gateway waits for an upstream's response
// headers. It stays below the gateway's own 30 s write timeout so a slow
// upstream gets a JSON 502 instead of a dropped connection.
const UpstreamTimeout = 25 * time.Second

// routes registers the gateway's endpoints. PRODUCER_URL and CONSUMER_URL
// (optional) are the upstreams' base URLs; the routes that need an upstream
// that is not set answer 503.
func routes(mux *http.ServeMux, getenv func(string) string) error {
	producer, err := newUpstream("producer", "PRODUCER_URL", getenv)
	if err != nil {
		return err
	}
	consumer, err := newUpstream("consumer", "CONSUMER_URL", getenv)
	if err != nil {
		return err
	}
	mux.Handle("/api/v1/menu", platform.Methods{http.MethodGet: menu})
	mux.Handle("/api/v1/orders", platform.Methods{
		http.MethodPost: func(w http.ResponseWriter, r *http.Request) { producer.forward(w, r, "/orders") },
	})
	mux.Handle("/api/v1/orders/{id}", platform.Methods{
		http.MethodGet: func(w http.ResponseWriter, r *http.Request) {
			id := r.PathValue("id")
			// Checked here so a malformed ID never costs an upstream call.
			if err := order.CheckID(id); err != nil {
				platform.WriteError(w, http.StatusBadRequest, err.Error())
				return
			}
			producer.forward(w, r, "/orders/"+id)
		},
	})
	mux.Handle("/api/v1/processed", platform.Methods{
		http.MethodGet: func(w http.ResponseWriter, r *http.Request) { consumer.forward(w, r, "/processed") },
	})
	return nil
}

// menuBody is the body of GET /api/v1/menu.
type menuBody struct {
	Currency string           `json:"currency"`
	Items    []order.MenuItem `json:"items"`
}

func menu(w http.ResponseWriter, _ *http.Request) {
	platform.WriteJSON(w, http.StatusOK, menuBody{Currency: "USD", Items: order.Menu()})
}

// upstream is one service the gateway forwards to.
type upstream struct {
	name   string
	envVar string
	base   *url.URL // nil when the variable is unset
	proxy  *httputil.ReverseProxy
}

func newUpstream(name, envVar string, getenv func(string) string) (*upstream, error) {
	u := &upstream{name: name, envVar: envVar}
	raw := strings.TrimSpace(getenv(envVar))
	if raw == "" {
		return u, nil
	}
	base, err := url.Parse(raw)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" ||
		base.RawQuery != "" || base.Fragment != "" || base.User != nil {
		shown := raw
		if err == nil && base.User != nil {
			shown = base.Redacted() // never echo a password
		}
		return nil, fmt.Errorf("%s=%q is not allowed: want the %s's base URL with http or https, "+
			"a host, no user info and no query, like http://127.0.0.1:8082", envVar, shown, name)
	}
	u.base = base

	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.ResponseHeaderTimeout = UpstreamTimeout
	u.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(base)
			pr.SetXForwarded()
		},
		Transport: transport,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			slog.Warn("upstream failed", "upstream", name, "url", base.String(), "path", r.URL.Path, "err", err)
			platform.WriteError(w, http.StatusBadGateway,
				fmt.Sprintf("the %s at %s did not answer: %v", name, base, err))
		},
	}
	return u, nil
}

// forward sends r to path on the upstream, keeping the method, body and query.
func (u *upstream) forward(w http.ResponseWriter, r *http.Request, path string) {
	if u.base == nil {
		platform.WriteError(w, http.StatusServiceUnavailable,
			fmt.Sprintf("the %s is not configured: start the gateway with %s set to its base URL", u.name, u.envVar))
		return
	}
	out := r.Clone(r.Context())
	out.URL.Path = path
	out.URL.RawPath = ""
	u.proxy.ServeHTTP(w, out)
}

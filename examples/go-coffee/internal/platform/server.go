// Package platform is what the four Go Coffee services share: configuration
// from the environment, the HTTP server with /health, /ready and /metrics,
// request metrics, fault injection, JSON helpers and graceful shutdown.
package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

// ShutdownTimeout is how long in-flight requests may run after SIGTERM.
const ShutdownTimeout = 10 * time.Second

// catchAll is the pattern NewServer adds to the business mux to answer JSON 404s.
const catchAll = "/"

// Service describes one Go Coffee service.
type Service struct {
	Name    string // e.g. "producer"; shows in /health and in metric labels
	Version string // main.version, stamped at build time
	// Routes reads the service's own settings through getenv and registers its
	// business endpoints on mux. It must not register "/", which answers 404.
	Routes func(mux *http.ServeMux, getenv func(string) string) error
}

type lifecycle int32

const (
	starting lifecycle = iota
	serving
	stopping
)

// Health is the JSON body of /health and /ready.
type Health struct {
	Status  string `json:"status"` // ok, starting or stopping
	Service string `json:"service"`
	Version string `json:"version"`
}

// Server serves one service: the operational endpoints answered directly and
// everything else through metrics, then faults, then the business mux.
type Server struct {
	name    string
	version string
	faults  Faults
	metrics *Metrics
	handler http.Handler
	state   atomic.Int32
}

// NewServer wraps the business mux. It adds the catch-all "/" to business so
// unknown paths answer a JSON 404. The server reports not ready until Serve runs.
func NewServer(name, version string, faults Faults, business *http.ServeMux) *Server {
	s := &Server{name: name, version: version, faults: faults, metrics: NewMetrics(name, version)}
	business.Handle(catchAll, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, http.StatusNotFound, fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path))
	}))

	root := http.NewServeMux()
	root.Handle("/health", Methods{http.MethodGet: s.health})
	root.Handle("/ready", Methods{http.MethodGet: s.ready})
	root.Handle("/metrics", Methods{http.MethodGet: s.metrics.ServeHTTP})
	// Metrics wrap the faults so injected errors and latency show in them.
	root.Handle(catchAll, s.metrics.Middleware(RouteLabel(business, catchAll), faults.Middleware(business)))
	s.handler = root
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Metrics returns the server's request metrics.
func (s *Server) Metrics() *Metrics { return s.metrics }

// health is liveness: always 200 while the process can answer.
func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	WriteJSON(w, http.StatusOK, Health{Status: "ok", Service: s.name, Version: s.version})
}

// ready is readiness: 200 only between start-up and shutdown.
func (s *Server) ready(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	body := Health{Service: s.name, Version: s.version}
	switch lifecycle(s.state.Load()) {
	case serving:
		body.Status = "ok"
		WriteJSON(w, http.StatusOK, body)
	case stopping:
		body.Status = "stopping"
		WriteJSON(w, http.StatusServiceUnavailable, body)
	default:
		body.Status = "starting"
		WriteJSON(w, http.StatusServiceUnavailable, body)
	}
}

// Serve answers requests on ln until ctx is done, then stops accepting new
// connections and waits up to ShutdownTimeout for in-flight requests.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		// Injected latency must not turn into a timeout of its own.
		WriteTimeout: 30*time.Second + s.faults.Latency,
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     slog.NewLogLogger(slog.Default().Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	// Connections that arrive before Serve starts wait in the listen backlog,
	// so the server is ready as soon as the listener exists.
	s.state.Store(int32(serving))
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		s.state.Store(int32(stopping))
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}

	s.state.Store(int32(stopping))
	shutdownCtx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("in-flight requests did not finish within %s: %w", ShutdownTimeout, err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	}
	return nil
}

// Run reads the configuration through getenv, listens on LISTEN_ADDR and
// serves svc until ctx is done.
func Run(ctx context.Context, svc Service, getenv func(string) string) error {
	cfg, err := LoadConfig(getenv)
	if err != nil {
		return err
	}
	business := http.NewServeMux()
	if svc.Routes != nil {
		if err := svc.Routes(business, getenv); err != nil {
			return err
		}
	}
	srv := NewServer(svc.Name, svc.Version, cfg.Faults, business)

	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		return fmt.Errorf("LISTEN_ADDR=%q: cannot listen (%w): want host:port with a free port, like %s",
			cfg.ListenAddr, err, DefaultListenAddr)
	}
	slog.Info("listening", "addr", ln.Addr().String(),
		"fault_error_rate", cfg.Faults.ErrorRate, "fault_latency", cfg.Faults.Latency.String())
	if err := srv.Serve(ctx, ln); err != nil {
		return err
	}
	slog.Info("stopped")
	return nil
}

// Main runs svc until SIGTERM or SIGINT and exits the process: all a
// service's main function needs. A configuration error prints one line,
// "<service>: <what is wrong>", and exits with status 1.
func Main(svc Service) {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)).
		With("service", svc.Name, "version", svc.Version))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err := Run(ctx, svc, os.Getenv)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", svc.Name, err)
		os.Exit(1)
	}
}

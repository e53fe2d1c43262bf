// Command brokenservice is a test double of a Go Coffee service that never gets
// ready: with mode "unready" it serves /health but answers /ready with 503
// forever; with mode "exit" it exits with code 3 at once. The mode is stamped
// at build time: -ldflags "-X main.mode=exit".
package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
)

var (
	version = "broken"
	mode    = "unready"
)

func main() {
	if mode == "exit" {
		fmt.Fprintln(os.Stderr, "brokenservice: exiting at once, as built (mode=exit)")
		os.Exit(3)
	}
	answer := func(status int, state string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_ = json.NewEncoder(w).Encode(map[string]string{
				"status": state, "service": "brokenservice", "version": version,
			})
		}
	}
	http.HandleFunc("/health", answer(http.StatusOK, "ok"))
	http.HandleFunc("/ready", answer(http.StatusServiceUnavailable, "starting"))
	addr := os.Getenv("LISTEN_ADDR")
	fmt.Fprintln(os.Stderr, "brokenservice: listening on", addr, "and never ready")
	if err := http.ListenAndServe(addr, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

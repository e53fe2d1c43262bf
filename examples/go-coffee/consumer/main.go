// Command consumer processes accepted coffee orders: POST /process takes an
// order with its ID and prepares it once; GET /processed lists the most
// recent processed orders.
package main

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"gocoffee.example/go-coffee/internal/order"
	"gocoffee.example/go-coffee/internal/platform"
)

// version is stamped at build time with -ldflags "-X main.version=<v>".
var version = "dev"

// Limits of GET /processed.
const (
	DefaultLimit = 20
	MaxLimit     = 100
)

func main() {
	platform.Main(platform.Service{Name: "consumer", Version: version, Routes: routes})
}

// routes registers the consumer's endpoints. ORDER_CAPACITY (optional) sets
// how many processed orders are kept in memory.
func routes(mux *http.ServeMux, getenv func(string) string) error {
	store, err := order.StoreFromEnv(getenv)
	if err != nil {
		return err
	}
	h := &handlers{store: store, now: time.Now}
	mux.Handle("/process", platform.Methods{http.MethodPost: h.process})
	mux.Handle("/processed", platform.Methods{http.MethodGet: h.processed})
	return nil
}

type handlers struct {
	store *order.Store
	now   func() time.Time
}

// processedList is the body of GET /processed.
type processedList struct {
	Orders []order.Record `json:"orders"`
	Count  int            `json:"count"`
	Total  int            `json:"total"` // how many the consumer still remembers
}

// process prepares an order once: 201 the first time, 200 with the same
// record when the order is delivered again.
func (h *handlers) process(w http.ResponseWriter, r *http.Request) {
	var o order.Order
	if err := platform.DecodeJSON(w, r, &o); err != nil {
		platform.WriteRequestError(w, err)
		return
	}
	problems := o.Problems()
	if !order.ValidID(o.ID) {
		problems = append([]string{fmt.Sprintf("id %q is not valid: want %s", o.ID, order.IDFormat)}, problems...)
	}
	if len(problems) > 0 {
		platform.WriteJSON(w, http.StatusUnprocessableEntity,
			platform.ErrorBody{Error: "order is not valid", Problems: problems})
		return
	}
	rec, added := h.store.Add(order.NewRecord(o, "processed", h.now()))
	status := http.StatusOK
	if added {
		status = http.StatusCreated
	}
	platform.WriteJSON(w, status, rec)
}

func (h *handlers) processed(w http.ResponseWriter, r *http.Request) {
	limit := DefaultLimit
	if raw := r.URL.Query().Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > MaxLimit {
			platform.WriteError(w, http.StatusBadRequest,
				fmt.Sprintf("limit=%q is not allowed: want a whole number from 1 to %d", raw, MaxLimit))
			return
		}
		limit = n
	}
	orders := h.store.Recent(limit)
	platform.WriteJSON(w, http.StatusOK, processedList{Orders: orders, Count: len(orders), Total: h.store.Len()})
}

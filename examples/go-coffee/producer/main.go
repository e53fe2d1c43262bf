// Command producer accepts coffee orders: POST /orders validates an order,
// gives it an ID and answers 202 Accepted; GET /orders/{id} shows it.
package main

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"gocoffee.example/go-coffee/internal/order"
	"gocoffee.example/go-coffee/internal/platform"
)

// version is stamped at build time with -ldflags "-X main.version=<v>".
var version = "dev"

func main() {
	platform.Main(platform.Service{Name: "producer", Version: version, Routes: routes})
}

// routes registers the producer's endpoints. ORDER_CAPACITY (optional) sets
// how many accepted orders are kept in memory, so how many GET /orders/{id}
// can still find.
func routes(mux *http.ServeMux, getenv func(string) string) error {
	store, err := order.StoreFromEnv(getenv)
	if err != nil {
		return err
	}
	h := &handlers{store: store, now: time.Now}
	mux.Handle("/orders", platform.Methods{http.MethodPost: h.accept})
	mux.Handle("/orders/{id}", platform.Methods{http.MethodGet: h.get})
	return nil
}

type handlers struct {
	store *order.Store
	now   func() time.Time
}

// orderRequest is what a client sends: an order without an ID.
type orderRequest struct {
	Customer string       `json:"customer"`
	Items    []order.Item `json:"items"`
}

func (h *handlers) accept(w http.ResponseWriter, r *http.Request) {
	var req orderRequest
	if err := platform.DecodeJSON(w, r, &req); err != nil {
		platform.WriteRequestError(w, err)
		return
	}
	o := order.Order{ID: order.NewID(), Customer: strings.TrimSpace(req.Customer), Items: req.Items}
	if problems := o.Problems(); len(problems) > 0 {
		platform.WriteJSON(w, http.StatusUnprocessableEntity,
			platform.ErrorBody{Error: "order is not valid", Problems: problems})
		return
	}
	rec, _ := h.store.Add(order.NewRecord(o, "accepted", h.now()))
	w.Header().Set("Location", "/orders/"+rec.ID)
	platform.WriteJSON(w, http.StatusAccepted, rec)
}

func (h *handlers) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := order.CheckID(id); err != nil {
		platform.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	rec, ok := h.store.Get(id)
	if !ok {
		platform.WriteError(w, http.StatusNotFound,
			fmt.Sprintf("order %s is unknown: it was never accepted or is older than the last %d orders",
				id, h.store.Capacity()))
		return
	}
	platform.WriteJSON(w, http.StatusOK, rec)
}

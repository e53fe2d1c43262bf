package main

import (
	"net/http"
	"strings"
	"testing"

	"gocoffee.example/go-coffee/internal/order"
	"gocoffee.example/go-coffee/internal/servicetest"
)

// newProducer is the whole service as main runs it, minus the listener.
func newProducer(t *testing.T, env map[string]string) http.Handler {
	t.Helper()
	return servicetest.New(t, "producer", version, routes, env)
}

const validOrder = `{"customer":" Ada ","items":[{"drink":"latte","size":"large","quantity":2}]}`

func TestAcceptThenGet(t *testing.T) {
	h := newProducer(t, nil)
	rec := servicetest.Do(h, http.MethodPost, "/orders", validOrder)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("POST /orders = %d %s, want 202", rec.Code, rec.Body)
	}
	accepted := servicetest.Decode[order.Record](t, rec)
	if !order.ValidID(accepted.ID) {
		t.Errorf("id %q is not a valid order ID", accepted.ID)
	}
	if accepted.Customer != "Ada" || accepted.Status != "accepted" || accepted.TotalCents != 950 ||
		accepted.UpdatedAt.IsZero() {
		t.Errorf("accepted = %+v", accepted)
	}
	if loc := rec.Header().Get("Location"); loc != "/orders/"+accepted.ID {
		t.Errorf("Location = %q", loc)
	}

	rec = servicetest.Do(h, http.MethodGet, "/orders/"+accepted.ID, "")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET = %d %s", rec.Code, rec.Body)
	}
	if got := servicetest.Decode[order.Record](t, rec); got.ID != accepted.ID || got.TotalCents != 950 {
		t.Errorf("GET = %+v, want the accepted order", got)
	}
}

func TestRejects(t *testing.T) {
	h := newProducer(t, nil)
	tests := []struct {
		name, method, target, body string
		wantStatus                 int
		wantError                  string
		wantProblem                string
	}{
		{"empty body", http.MethodPost, "/orders", "", 400, "empty", ""},
		{"not JSON", http.MethodPost, "/orders", "{", 400, "not valid JSON", ""},
		{"client sets the ID", http.MethodPost, "/orders", `{"id":"ord_0123456789abcdef","customer":"A","items":[]}`,
			400, `unknown field "id"`, ""},
		{"no items", http.MethodPost, "/orders", `{"customer":"Ada","items":[]}`, 422, "order is not valid", "at least one drink"},
		{"off the menu", http.MethodPost, "/orders", `{"customer":"Ada","items":[{"drink":"tea","size":"small","quantity":1}]}`,
			422, "order is not valid", `"tea" is not on the menu`},
		{"quantity as text", http.MethodPost, "/orders", `{"customer":"Ada","items":[{"drink":"latte","size":"small","quantity":"2"}]}`,
			400, "quantity", ""},
		{"GET the collection", http.MethodGet, "/orders", "", 405, "use POST", ""},
		{"DELETE an order", http.MethodDelete, "/orders/ord_0123456789abcdef", "", 405, "use GET", ""},
		{"malformed ID", http.MethodGet, "/orders/42", "", 400, `order ID "42" is not valid`, ""},
		{"unknown ID", http.MethodGet, "/orders/ord_0123456789abcdef", "", 404, "ord_0123456789abcdef is unknown", ""},
		{"unknown path", http.MethodGet, "/menu", "", 404, "no route for GET /menu", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := servicetest.Do(h, tt.method, tt.target, tt.body)
			servicetest.WantError(t, rec, tt.wantStatus, tt.wantError, tt.wantProblem)
		})
	}
}

func TestOrderCapacity(t *testing.T) {
	h := newProducer(t, map[string]string{"ORDER_CAPACITY": "1"})
	first := servicetest.Decode[order.Record](t, servicetest.Do(h, http.MethodPost, "/orders", validOrder))
	second := servicetest.Decode[order.Record](t, servicetest.Do(h, http.MethodPost, "/orders", validOrder))
	if rec := servicetest.Do(h, http.MethodGet, "/orders/"+first.ID, ""); rec.Code != http.StatusNotFound {
		t.Errorf("oldest order beyond capacity: %d, want 404", rec.Code)
	}
	if rec := servicetest.Do(h, http.MethodGet, "/orders/"+second.ID, ""); rec.Code != http.StatusOK {
		t.Errorf("newest order: %d, want 200", rec.Code)
	}
}

func TestRoutesRejectBadCapacity(t *testing.T) {
	for _, value := range []string{"0", "lots", "1000001"} {
		err := routes(http.NewServeMux(), servicetest.Env(map[string]string{"ORDER_CAPACITY": value}))
		if err == nil || !strings.Contains(err.Error(), `ORDER_CAPACITY="`+value+`"`) {
			t.Errorf("ORDER_CAPACITY=%s: error %v, want one naming the variable and value", value, err)
		}
	}
}

func TestMetricsUseRoutePatterns(t *testing.T) {
	h := newProducer(t, nil)
	servicetest.Do(h, http.MethodPost, "/orders", validOrder)
	servicetest.Do(h, http.MethodGet, "/orders/ord_0123456789abcdef", "")
	text := servicetest.Do(h, http.MethodGet, "/metrics", "").Body.String()
	for _, want := range []string{
		`http_requests_total{service="producer",version="dev",code="202",method="POST",path="/orders"} 1`,
		`http_requests_total{service="producer",version="dev",code="404",method="GET",path="/orders/{id}"} 1`,
		`build_info{service="producer",version="dev"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s:\n%s", want, text)
		}
	}
}

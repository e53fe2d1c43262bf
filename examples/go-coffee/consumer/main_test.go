package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"gocoffee.example/go-coffee/internal/order"
	"gocoffee.example/go-coffee/internal/servicetest"
)

// newConsumer is the whole service as main runs it, minus the listener.
func newConsumer(t *testing.T, env map[string]string) http.Handler {
	t.Helper()
	return servicetest.New(t, "consumer", version, routes, env)
}

func orderJSON(id string) string {
	return fmt.Sprintf(`{"id":%q,"customer":"Ada","items":[{"drink":"espresso","size":"small","quantity":3}]}`, id)
}

func TestProcessOnce(t *testing.T) {
	h := newConsumer(t, nil)
	const id = "ord_00000000000000a1"

	rec := servicetest.Do(h, http.MethodPost, "/process", orderJSON(id))
	if rec.Code != http.StatusCreated {
		t.Fatalf("first POST /process = %d %s, want 201", rec.Code, rec.Body)
	}
	first := servicetest.Decode[order.Record](t, rec)
	if first.ID != id || first.Status != "processed" || first.TotalCents != 750 || first.UpdatedAt.IsZero() {
		t.Errorf("processed = %+v", first)
	}

	rec = servicetest.Do(h, http.MethodPost, "/process", orderJSON(id))
	if rec.Code != http.StatusOK {
		t.Fatalf("second POST /process = %d %s, want 200", rec.Code, rec.Body)
	}
	if again := servicetest.Decode[order.Record](t, rec); !again.UpdatedAt.Equal(first.UpdatedAt) {
		t.Errorf("redelivery processed the order again: %v then %v", first.UpdatedAt, again.UpdatedAt)
	}

	list := servicetest.Decode[processedList](t, servicetest.Do(h, http.MethodGet, "/processed", ""))
	if list.Count != 1 || list.Total != 1 || len(list.Orders) != 1 || list.Orders[0].ID != id {
		t.Errorf("GET /processed = %+v, want the one order", list)
	}
}

func TestProcessedLimitAndOrder(t *testing.T) {
	h := newConsumer(t, map[string]string{"ORDER_CAPACITY": "3"})
	for i := range 5 {
		if rec := servicetest.Do(h, http.MethodPost, "/process", orderJSON(fmt.Sprintf("ord_%016x", i))); rec.Code != http.StatusCreated {
			t.Fatalf("order %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	tests := []struct {
		target string
		want   []string
	}{
		{"/processed", []string{"ord_0000000000000004", "ord_0000000000000003", "ord_0000000000000002"}},
		{"/processed?limit=1", []string{"ord_0000000000000004"}},
		{"/processed?limit=100", []string{"ord_0000000000000004", "ord_0000000000000003", "ord_0000000000000002"}},
	}
	for _, tt := range tests {
		rec := servicetest.Do(h, http.MethodGet, tt.target, "")
		if rec.Code != http.StatusOK {
			t.Fatalf("%s = %d %s", tt.target, rec.Code, rec.Body)
		}
		list := servicetest.Decode[processedList](t, rec)
		var ids []string
		for _, o := range list.Orders {
			ids = append(ids, o.ID)
		}
		if strings.Join(ids, ",") != strings.Join(tt.want, ",") || list.Count != len(tt.want) || list.Total != 3 {
			t.Errorf("%s = %v (count %d, total %d), want %v (total 3)", tt.target, ids, list.Count, list.Total, tt.want)
		}
	}
}

func TestRejects(t *testing.T) {
	h := newConsumer(t, nil)
	tests := []struct {
		name, method, target, body string
		wantStatus                 int
		wantError                  string
		wantProblem                string
	}{
		{"no ID", http.MethodPost, "/process", `{"customer":"Ada","items":[{"drink":"latte","size":"small","quantity":1}]}`,
			422, "order is not valid", `id "" is not valid`},
		{"bad ID and no items", http.MethodPost, "/process", `{"id":"42","customer":"Ada","items":[]}`,
			422, "order is not valid", "at least one drink"},
		{"unknown field", http.MethodPost, "/process", `{"id":"ord_0123456789abcdef","note":"x"}`, 400, `unknown field "note"`, ""},
		{"empty body", http.MethodPost, "/process", "", 400, "empty", ""},
		{"GET /process", http.MethodGet, "/process", "", 405, "use POST", ""},
		{"POST /processed", http.MethodPost, "/processed", "{}", 405, "use GET or HEAD", ""},
		{"limit zero", http.MethodGet, "/processed?limit=0", "", 400, `limit="0" is not allowed`, ""},
		{"limit too big", http.MethodGet, "/processed?limit=101", "", 400, "from 1 to 100", ""},
		{"limit text", http.MethodGet, "/processed?limit=all", "", 400, `limit="all"`, ""},
		{"unknown path", http.MethodGet, "/orders", "", 404, "no route", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := servicetest.Do(h, tt.method, tt.target, tt.body)
			servicetest.WantError(t, rec, tt.wantStatus, tt.wantError, tt.wantProblem)
		})
	}
}

func TestRoutesRejectBadCapacity(t *testing.T) {
	err := routes(http.NewServeMux(), servicetest.Env(map[string]string{"ORDER_CAPACITY": "-5"}))
	if err == nil || !strings.Contains(err.Error(), `ORDER_CAPACITY="-5"`) {
		t.Errorf("error = %v, want one naming ORDER_CAPACITY and its value", err)
	}
}

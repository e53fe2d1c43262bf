package order

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestProblems(t *testing.T) {
	latte := Item{Drink: "latte", Size: "medium", Quantity: 1}
	many := make([]Item, MaxItems+1)
	for i := range many {
		many[i] = latte
	}
	tests := []struct {
		name  string
		order Order
		want  []string // substrings, one per expected problem, in order
	}{
		{"valid", Order{Customer: "Ada", Items: []Item{latte}}, nil},
		{"valid at the limits", Order{
			Customer: strings.Repeat("é", MaxCustomerLen),
			Items:    append(many[:MaxItems-1:MaxItems-1], Item{Drink: "espresso", Size: "large", Quantity: MaxQuantity}),
		}, nil},
		{"no customer", Order{Customer: "  ", Items: []Item{latte}}, []string{"customer is required"}},
		{"long customer", Order{Customer: strings.Repeat("a", MaxCustomerLen+1), Items: []Item{latte}},
			[]string{"customer is longer than 64"}},
		{"no items", Order{Customer: "Ada"}, []string{"at least one drink"}},
		{"too many items", Order{Customer: "Ada", Items: many}, []string{"21 lines, at most 20"}},
		{"unknown drink", Order{Customer: "Ada", Items: []Item{{Drink: "mocha", Size: "small", Quantity: 1}}},
			[]string{`items[0].drink "mocha" is not on the menu (espresso, americano`}},
		{"unknown size", Order{Customer: "Ada", Items: []Item{latte, {Drink: "latte", Size: "venti", Quantity: 1}}},
			[]string{`items[1].size "venti" is not one of small, medium, large`}},
		{"zero quantity", Order{Customer: "Ada", Items: []Item{{Drink: "latte", Size: "small"}}},
			[]string{"items[0].quantity 0 must be from 1 to 10"}},
		{"everything wrong", Order{Items: []Item{{Drink: "tea", Quantity: 11}}},
			[]string{"customer is required", `"tea" is not on the menu`, "quantity 11"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.order.Problems()
			if len(got) != len(tt.want) {
				t.Fatalf("problems = %q, want %d like %q", got, len(tt.want), tt.want)
			}
			for i, want := range tt.want {
				if !strings.Contains(got[i], want) {
					t.Errorf("problem %d = %q, want it to contain %q", i, got[i], want)
				}
			}
		})
	}
}

func TestTotalCents(t *testing.T) {
	o := Order{Customer: "Ada", Items: []Item{
		{Drink: "espresso", Size: "small", Quantity: 2}, // 2 x 250
		{Drink: "latte", Size: "large", Quantity: 1},    // 475
	}}
	if got := o.TotalCents(); got != 975 {
		t.Errorf("TotalCents = %d, want 975", got)
	}
}

func TestMenuIsACopy(t *testing.T) {
	m := Menu()
	if len(m) == 0 {
		t.Fatal("empty menu")
	}
	m[0].PriceCents["small"] = 1
	m[0].Drink = "changed"
	if cents, _ := Price("espresso", "small"); cents != 250 {
		t.Errorf("changing the copy changed the menu: espresso small = %d", cents)
	}
	for _, item := range Menu() {
		for _, size := range Sizes {
			if item.PriceCents[size] <= 0 {
				t.Errorf("%s has no %s price", item.Drink, size)
			}
		}
	}
}

func TestIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := NewID()
		if !ValidID(id) {
			t.Fatalf("NewID() = %q is not a valid ID", id)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "ord_", "ord_0123456789ABCDEF", "ord_0123456789abcde", "xrd_0123456789abcdef", "ord_0123456789abcdef0"} {
		if ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}

func record(id string) Record {
	return Record{Order: Order{ID: id, Customer: "Ada"}, Status: "accepted", UpdatedAt: time.Unix(0, 0)}
}

func TestStore(t *testing.T) {
	s := NewStore(2)
	if s.Capacity() != 2 {
		t.Errorf("Capacity = %d", s.Capacity())
	}
	if _, added := s.Add(record("a")); !added {
		t.Error("first add of a was not added")
	}
	dup := record("a")
	dup.Status = "other"
	if got, added := s.Add(dup); added || got.Status != "accepted" {
		t.Errorf("second add of a: added=%v status=%q, want the first record kept", added, got.Status)
	}
	s.Add(record("b"))
	s.Add(record("c")) // evicts a, the oldest

	if _, ok := s.Get("a"); ok {
		t.Error("a is still there beyond capacity")
	}
	if got, ok := s.Get("c"); !ok || got.ID != "c" {
		t.Errorf("Get(c) = %+v, %v", got, ok)
	}
	tests := []struct {
		limit int
		want  string
	}{
		{10, "c,b"},
		{1, "c"},
		{0, ""},
		{-1, ""},
	}
	for _, tt := range tests {
		var ids []string
		for _, r := range s.Recent(tt.limit) {
			ids = append(ids, r.ID)
		}
		if got := strings.Join(ids, ","); got != tt.want {
			t.Errorf("Recent(%d) = %q, want %q", tt.limit, got, tt.want)
		}
	}
	if s.Len() != 2 {
		t.Errorf("Len = %d, want 2", s.Len())
	}
	if NewStore(0).Capacity() != 1 {
		t.Error("a store must hold at least one record")
	}
}

func TestStoreConcurrent(t *testing.T) {
	s := NewStore(50)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				s.Add(record(fmt.Sprintf("%d-%d", w, i)))
				s.Recent(5)
				s.Get("0-0")
			}
		}()
	}
	wg.Wait()
	if s.Len() != 50 {
		t.Errorf("Len = %d, want 50", s.Len())
	}
}

func TestCheckID(t *testing.T) {
	if err := CheckID("ord_0123456789abcdef"); err != nil {
		t.Errorf("CheckID(valid) = %v", err)
	}
	err := CheckID("ord_1")
	if err == nil || err.Error() != `order ID "ord_1" is not valid: want "ord_" followed by 16 lowercase hex digits` {
		t.Errorf("CheckID(ord_1) = %v, want the ID and the format named", err)
	}
}

func TestNewRecord(t *testing.T) {
	o := Order{ID: "ord_0123456789abcdef", Customer: "Ada", Items: []Item{{Drink: "latte", Size: "large", Quantity: 2}}}
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600))
	rec := NewRecord(o, "accepted", at)
	if rec.ID != o.ID || rec.TotalCents != o.TotalCents() || rec.Status != "accepted" ||
		!rec.UpdatedAt.Equal(at) || rec.UpdatedAt.Location() != time.UTC {
		t.Errorf("NewRecord = %+v", rec)
	}
}

func TestStoreFromEnv(t *testing.T) {
	tests := []struct {
		value        string
		wantCapacity int // 0: an error naming the variable and the value
	}{
		{"", DefaultCapacity},
		{"1", 1},
		{"1000000", MaxCapacity},
		{"0", 0},
		{"-5", 0},
		{"lots", 0},
		{"1000001", 0},
	}
	for _, tt := range tests {
		s, err := StoreFromEnv(func(key string) string {
			if key == "ORDER_CAPACITY" {
				return tt.value
			}
			return ""
		})
		switch {
		case tt.wantCapacity == 0:
			if err == nil || !strings.Contains(err.Error(), `ORDER_CAPACITY="`+tt.value+`"`) {
				t.Errorf("ORDER_CAPACITY=%q: error %v, want one naming the variable and value", tt.value, err)
			}
		case err != nil || s.Capacity() != tt.wantCapacity:
			t.Errorf("ORDER_CAPACITY=%q: store %v, error %v, want capacity %d", tt.value, s, err, tt.wantCapacity)
		}
	}
}

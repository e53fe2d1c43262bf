// Package order is the coffee order domain the services share: the menu,
// order validation, prices and a bounded in-memory store of orders.
package order

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Limits on one order, so a single request cannot hold the service's memory.
const (
	MaxItems       = 20
	MaxQuantity    = 10
	MaxCustomerLen = 64
)

// Sizes a drink comes in, smallest first.
var Sizes = []string{"small", "medium", "large"}

// MenuItem is one drink and its price in cents per size.
type MenuItem struct {
	Drink      string         `json:"drink"`
	Name       string         `json:"name"`
	PriceCents map[string]int `json:"price_cents"`
}

var menu = []MenuItem{
	{Drink: "espresso", Name: "Espresso", PriceCents: map[string]int{"small": 250, "medium": 300, "large": 350}},
	{Drink: "americano", Name: "Americano", PriceCents: map[string]int{"small": 300, "medium": 350, "large": 400}},
	{Drink: "cappuccino", Name: "Cappuccino", PriceCents: map[string]int{"small": 350, "medium": 400, "large": 450}},
	{Drink: "latte", Name: "Caffè Latte", PriceCents: map[string]int{"small": 375, "medium": 425, "large": 475}},
	{Drink: "flat-white", Name: "Flat White", PriceCents: map[string]int{"small": 380, "medium": 430, "large": 480}},
}

// Menu returns a copy of the menu, in a stable order.
func Menu() []MenuItem {
	out := make([]MenuItem, len(menu))
	for i, item := range menu {
		out[i] = item
		out[i].PriceCents = make(map[string]int, len(item.PriceCents))
		for size, cents := range item.PriceCents {
			out[i].PriceCents[size] = cents
		}
	}
	return out
}

// Price returns the price in cents of one drink in one size.
func Price(drink, size string) (int, bool) {
	for _, item := range menu {
		if item.Drink == drink {
			cents, ok := item.PriceCents[size]
			return cents, ok
		}
	}
	return 0, false
}

func drinkNames() []string {
	names := make([]string, len(menu))
	for i, item := range menu {
		names[i] = item.Drink
	}
	return names
}

// Item is one line of an order.
type Item struct {
	Drink    string `json:"drink"`
	Size     string `json:"size"`
	Quantity int    `json:"quantity"`
}

// Order is what a customer asks for. ID is empty until the producer accepts it.
type Order struct {
	ID       string `json:"id,omitempty"`
	Customer string `json:"customer"`
	Items    []Item `json:"items"`
}

// Problems lists everything wrong with the customer and the items (not the
// ID; see ValidID), so a client can fix them all in one round trip. An empty
// list means the order is valid.
func (o Order) Problems() []string {
	var problems []string
	customer := strings.TrimSpace(o.Customer)
	switch {
	case customer == "":
		problems = append(problems, "customer is required")
	case utf8.RuneCountInString(customer) > MaxCustomerLen:
		problems = append(problems, fmt.Sprintf("customer is longer than %d characters", MaxCustomerLen))
	}

	switch {
	case len(o.Items) == 0:
		problems = append(problems, "items must hold at least one drink")
	case len(o.Items) > MaxItems:
		problems = append(problems, fmt.Sprintf("items holds %d lines, at most %d are allowed", len(o.Items), MaxItems))
	default:
		for i, item := range o.Items {
			if _, ok := Price(item.Drink, Sizes[0]); !ok {
				problems = append(problems, fmt.Sprintf("items[%d].drink %q is not on the menu (%s)",
					i, item.Drink, strings.Join(drinkNames(), ", ")))
			} else if _, ok := Price(item.Drink, item.Size); !ok {
				problems = append(problems, fmt.Sprintf("items[%d].size %q is not one of %s",
					i, item.Size, strings.Join(Sizes, ", ")))
			}
			if item.Quantity < 1 || item.Quantity > MaxQuantity {
				problems = append(problems, fmt.Sprintf("items[%d].quantity %d must be from 1 to %d",
					i, item.Quantity, MaxQuantity))
			}
		}
	}
	return problems
}

// TotalCents is the price of a valid order.
func (o Order) TotalCents() int {
	total := 0
	for _, item := range o.Items {
		cents, _ := Price(item.Drink, item.Size)
		total += cents * item.Quantity
	}
	return total
}

var idPattern = regexp.MustCompile(`^ord_[0-9a-f]{16}$`)

// NewID returns a random order ID such as "ord_1f2e3d4c5b6a7980".
func NewID() string {
	b := make([]byte, 8)
	// crypto/rand.Read never returns an error on Linux (Go 1.24 documents it
	// as always nil); a failure would be unrecoverable anyway.
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("read random bytes for an order ID: %v", err))
	}
	return "ord_" + hex.EncodeToString(b)
}

// ValidID reports whether id has the shape NewID produces.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// IDFormat describes a valid ID for error messages.
const IDFormat = `"ord_" followed by 16 lowercase hex digits`

// CheckID returns nil when id is valid, else an error that names id and the
// format it should have, fit to answer a client with.
func CheckID(id string) error {
	if ValidID(id) {
		return nil
	}
	return fmt.Errorf("order ID %q is not valid: want %s", id, IDFormat)
}

package order

import (
	"sync"
	"time"

	"gocoffee.example/go-coffee/internal/platform"
)

// Bounds of ORDER_CAPACITY, how many records a service keeps in memory.
const (
	DefaultCapacity = 1000
	MaxCapacity     = 1_000_000
)

// Record is an order with what a service did with it.
type Record struct {
	Order
	TotalCents int       `json:"total_cents"`
	Status     string    `json:"status"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// NewRecord is o with its total price, what a service did with it (status)
// and when, in UTC.
func NewRecord(o Order, status string, at time.Time) Record {
	return Record{Order: o, TotalCents: o.TotalCents(), Status: status, UpdatedAt: at.UTC()}
}

// Store keeps the most recent records in memory, at most capacity of them:
// the services must not write to the filesystem, and an unbounded map would
// grow until the container is killed. Safe for concurrent use.
type Store struct {
	mu       sync.Mutex
	capacity int
	byID     map[string]Record
	ids      []string // insertion order, oldest first
}

// NewStore returns an empty store holding at most capacity records (at least 1).
func NewStore(capacity int) *Store {
	capacity = max(capacity, 1)
	return &Store{capacity: capacity, byID: make(map[string]Record, capacity)}
}

// StoreFromEnv returns an empty store sized by ORDER_CAPACITY, read through
// getenv: DefaultCapacity when unset, an error naming the variable and the
// value when it is not a whole number from 1 to MaxCapacity.
func StoreFromEnv(getenv func(string) string) (*Store, error) {
	capacity, err := platform.IntEnv(getenv, "ORDER_CAPACITY", DefaultCapacity, 1, MaxCapacity)
	if err != nil {
		return nil, err
	}
	return NewStore(capacity), nil
}

// Add stores rec unless a record with its ID is already there. It returns the
// stored record and whether rec was added; adding twice is harmless, so
// at-least-once delivery does not process an order twice.
func (s *Store) Add(rec Record) (Record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if existing, ok := s.byID[rec.ID]; ok {
		return existing, false
	}
	if len(s.ids) == s.capacity {
		delete(s.byID, s.ids[0])
		s.ids = s.ids[1:]
	}
	s.byID[rec.ID] = rec
	s.ids = append(s.ids, rec.ID)
	return rec, true
}

// Get returns the record with id.
func (s *Store) Get(id string) (Record, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.byID[id]
	return rec, ok
}

// Recent returns up to limit records, newest first.
func (s *Store) Recent(limit int) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := min(max(limit, 0), len(s.ids))
	out := make([]Record, 0, n)
	for i := len(s.ids) - 1; i >= 0 && len(out) < n; i-- {
		out = append(out, s.byID[s.ids[i]])
	}
	return out
}

// Capacity returns how many records the store keeps at most.
func (s *Store) Capacity() int { return s.capacity }

// Len returns how many records the store holds.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ids)
}

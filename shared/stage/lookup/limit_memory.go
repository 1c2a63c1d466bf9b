package lookup

import (
	"container/list"
	"context"
	"maps"
	"sync"
	"time"
)

// DefaultMemoryKeys is MemoryAttempts' default cap: 100,000 identities with failures in
// the last hour, about 25 MB at most.
const DefaultMemoryKeys = 100_000

// MemoryAttempts is an AttemptStore in the process's memory: the embedded backend's, where
// one process answers every lookup. Memory is bounded: at most MaxKeys identities are
// kept; past it the one whose counts expire first goes (expired ones are dropped as they
// are met). An attacker who spreads failures over more than MaxKeys ID numbers an hour
// can thus make the oldest counts be forgotten early: the cap is set well above what the
// per-client limit lets one client send in an hour (20/s is 72,000).
type MemoryAttempts struct {
	maxKeys int
	now     func() time.Time

	mu      sync.Mutex
	order   *list.List // of *memAttempts, by expiry: front expires first
	entries map[string]*list.Element
}

type memAttempts struct {
	key     string
	expires time.Time
	buckets map[int64]int
}

// NewMemoryAttempts returns an empty store of at most maxKeys identities (<= 0:
// DefaultMemoryKeys) reading time from now (nil: time.Now).
func NewMemoryAttempts(maxKeys int, now func() time.Time) *MemoryAttempts {
	if maxKeys <= 0 {
		maxKeys = DefaultMemoryKeys
	}
	if now == nil {
		now = time.Now
	}
	return &MemoryAttempts{maxKeys: maxKeys, now: now, order: list.New(), entries: map[string]*list.Element{}}
}

// FailedAttempts implements AttemptStore.
func (m *MemoryAttempts) FailedAttempts(_ context.Context, key string, from int64) (map[int64]int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dropExpired(2)
	el, ok := m.entries[key]
	if !ok {
		return map[int64]int{}, nil
	}
	return window(el.Value.(*memAttempts).buckets, from), nil
}

// AddFailedAttempt implements AttemptStore.
func (m *MemoryAttempts) AddFailedAttempt(_ context.Context, key string, bucket int64, delta int, from int64, expires time.Time) (map[int64]int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dropExpired(2)
	el, ok := m.entries[key]
	if !ok {
		if m.order.Len() >= m.maxKeys {
			m.remove(m.order.Front())
		}
		el = m.order.PushBack(&memAttempts{key: key, buckets: map[int64]int{}})
		m.entries[key] = el
	}
	e := el.Value.(*memAttempts)
	for b := range e.buckets {
		if b < from {
			delete(e.buckets, b)
		}
	}
	e.buckets[bucket] += delta
	if e.buckets[bucket] <= 0 {
		delete(e.buckets, bucket)
	}
	if expires.After(e.expires) {
		e.expires = expires
		// Expiries grow with the clock, so the entry moves to the back; a later one
		// ahead of it (a clock step back) only delays its own cleanup.
		m.order.MoveToBack(el)
	}
	if len(e.buckets) == 0 {
		m.remove(el)
		return map[int64]int{}, nil
	}
	return window(e.buckets, from), nil
}

// Len is the number of identities held.
func (m *MemoryAttempts) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.order.Len()
}

// dropExpired drops up to n expired entries from the front: steady cleanup without a
// sweeper goroutine.
func (m *MemoryAttempts) dropExpired(n int) {
	now := m.now()
	for range n {
		el := m.order.Front()
		if el == nil || el.Value.(*memAttempts).expires.After(now) {
			return
		}
		m.remove(el)
	}
}

func (m *MemoryAttempts) remove(el *list.Element) {
	delete(m.entries, el.Value.(*memAttempts).key)
	m.order.Remove(el)
}

func window(buckets map[int64]int, from int64) map[int64]int {
	out := maps.Clone(buckets)
	for b := range out {
		if b < from {
			delete(out, b)
		}
	}
	return out
}

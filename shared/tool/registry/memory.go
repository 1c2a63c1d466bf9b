package registry

import (
	"cmp"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"
	"unsafe"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/identity"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/domain/vnname"
)

// Memory is a population registry held in memory, built for millions of people: the text
// of all people lives in a few large byte chunks (no per-person allocation, nothing for the
// garbage collector to scan), IDs are indexed as integers, and the candidate index is a
// sorted array of hashes.
//
// Add must not run concurrently with anything else; once loaded, Lookup and SameName are
// safe for concurrent use.
type Memory struct {
	ids    map[uint64]uint32 // packed ID number -> index in people
	people []entry
	text   arena

	indexMu sync.Mutex
	indexed atomic.Bool
	hashes  []uint64 // sorted: hash of (name key, birth year)
	slots   []uint32 // slots[i] is the person whose hash is hashes[i]
	seed    maphash.Seed
}

// entry is one person. Its text is id, dob, name and name key, back to back in the arena.
type entry struct {
	text    uint32 // arena reference
	nameLen uint16
	keyLen  uint16
	idLen   uint8
	female  bool
}

const dobLen = len("2006-01-02")

// NewMemory returns an empty registry; sizeHint is the expected number of people (0 if
// unknown).
func NewMemory(sizeHint int) *Memory {
	return &Memory{
		ids:    make(map[uint64]uint32, sizeHint),
		people: make([]entry, 0, sizeHint),
		seed:   maphash.MakeSeed(),
	}
}

// ErrPerson reports a person Add cannot hold.
var ErrPerson = errors.New("registry: invalid person")

// Add adds a person, or replaces the one holding the same ID number (a re-load updates
// people). p goes through Check first. replaced reports an update.
func (m *Memory) Add(p match.Person) (replaced bool, err error) {
	p, err = Check(p)
	if err != nil {
		return false, err
	}
	ref, err := m.text.add(p.IDNumber, p.DOB, p.FullName, p.NameKey)
	if err != nil {
		return false, err
	}
	e := entry{text: ref, nameLen: uint16(len(p.FullName)), keyLen: uint16(len(p.NameKey)),
		idLen: uint8(len(p.IDNumber)), female: p.Gender == dose.Female}
	packed := packID(p.IDNumber)
	m.indexed.Store(false)
	if slot, ok := m.ids[packed]; ok {
		m.people[slot] = e // the old text stays in the arena: updates are rare
		return true, nil
	}
	if len(m.people) == 1<<32-1 {
		return false, fmt.Errorf("%w: registry full", ErrPerson)
	}
	m.ids[packed] = uint32(len(m.people))
	m.people = append(m.people, e)
	return false, nil
}

// PersonError says which field of a registry person is wrong and why (never its value).
// It matches ErrPerson with errors.Is.
type PersonError struct {
	Field  string
	Reason string
}

func (e *PersonError) Error() string { return "registry: invalid person: " + e.Field + ": " + e.Reason }

// Is makes errors.Is(err, ErrPerson) true.
func (e *PersonError) Is(target error) bool { return target == ErrPerson }

// Check validates a registry person and returns it normalised, as every registry stores
// it: ID digits only (identity.Parse), name in display form (vnname.Normalize, at most
// MaxNameRunes, no control characters) with its NameKey, DOB a full date, Gender male or
// female, and ID digits that agree with gender and birth year (the registry is the
// reference: an entry contradicting itself is corrupt). Errors are *PersonError.
func Check(p match.Person) (match.Person, error) {
	bad := func(field, reason string) (match.Person, error) {
		return p, &PersonError{Field: field, Reason: reason}
	}
	id, err := identity.Parse(p.IDNumber)
	if err != nil {
		return bad("id_number", err.Error())
	}
	p.IDNumber = id.Number
	switch {
	case !utf8.ValidString(p.FullName):
		return bad("full_name", "is not valid UTF-8")
	case strings.ContainsFunc(p.FullName, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return bad("full_name", "contains control characters")
	}
	p.FullName = vnname.Normalize(p.FullName)
	switch n := utf8.RuneCountInString(p.FullName); {
	case n == 0:
		return bad("full_name", "is required")
	case n > MaxNameRunes:
		return bad("full_name", fmt.Sprintf("is longer than %d characters", MaxNameRunes))
	}
	dob, err := dose.ParsePartialDate(p.DOB)
	if err != nil || dob.Day == 0 {
		return bad("dob", "must be a full date YYYY-MM-DD")
	}
	if p.Gender != dose.Male && p.Gender != dose.Female {
		return bad("gender", "must be male or female")
	}
	if err := id.CheckRecord(p.Gender, dob); err != nil {
		return bad("id_number", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	p.NameKey = vnname.Key(p.FullName) // recomputed: a caller's key cannot be trusted
	if len(p.NameKey) > 1<<16-1 {
		return bad("full_name", "is too long")
	}
	return p, nil
}

// Len returns the number of people.
func (m *Memory) Len() int { return len(m.people) }

// Lookup implements match.Registry. It does not allocate.
func (m *Memory) Lookup(id string) (match.Person, bool, error) {
	if len(id) != 9 && len(id) != 12 {
		return match.Person{}, false, nil
	}
	for i := 0; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return match.Person{}, false, nil
		}
	}
	slot, ok := m.ids[packID(id)]
	if !ok {
		return match.Person{}, false, nil
	}
	return m.person(slot), true, nil
}

// SameName implements match.Registry: an index lookup, built on first use after loading.
func (m *Memory) SameName(nameKey string, birthYear int, visit func(match.Person) bool) error {
	m.buildIndex()
	h := m.nameHash(nameKey, birthYear)
	i, _ := slices.BinarySearch(m.hashes, h)
	for ; i < len(m.hashes) && m.hashes[i] == h; i++ {
		p := m.person(m.slots[i])
		if p.NameKey != nameKey || dobYear(p.DOB) != birthYear { // a hash collision
			continue
		}
		if !visit(p) {
			return nil
		}
	}
	return nil
}

// All calls yield for every person, in load order.
func (m *Memory) All(yield func(match.Person) bool) {
	for slot := range m.people {
		if !yield(m.person(uint32(slot))) {
			return
		}
	}
}

// person materialises a person; its strings point into the arena.
func (m *Memory) person(slot uint32) match.Person {
	e := m.people[slot]
	s := m.text.get(e.text, int(e.idLen)+dobLen+int(e.nameLen)+int(e.keyLen))
	p := match.Person{Gender: dose.Male}
	p.IDNumber, s = s[:e.idLen], s[e.idLen:]
	p.DOB, s = s[:dobLen], s[dobLen:]
	p.FullName, p.NameKey = s[:e.nameLen], s[e.nameLen:]
	if e.female {
		p.Gender = dose.Female
	}
	return p
}

func (m *Memory) nameHash(key string, year int) uint64 {
	return maphash.String(m.seed, key) ^ uint64(year)*0x9E3779B97F4A7C15
}

func (m *Memory) buildIndex() {
	if m.indexed.Load() {
		return
	}
	m.indexMu.Lock()
	defer m.indexMu.Unlock()
	if m.indexed.Load() {
		return
	}
	type pair struct {
		h    uint64
		slot uint32
	}
	pairs := make([]pair, len(m.people))
	for slot := range m.people {
		p := m.person(uint32(slot))
		pairs[slot] = pair{m.nameHash(p.NameKey, dobYear(p.DOB)), uint32(slot)}
	}
	slices.SortFunc(pairs, func(a, b pair) int {
		return cmp.Or(cmp.Compare(a.h, b.h), cmp.Compare(a.slot, b.slot))
	})
	m.hashes = make([]uint64, len(pairs))
	m.slots = make([]uint32, len(pairs))
	for i, p := range pairs {
		m.hashes[i], m.slots[i] = p.h, p.slot
	}
	m.indexed.Store(true)
}

// MemoryStats describes a Memory's footprint.
type MemoryStats struct {
	People        int
	TextBytes     int // arena bytes in use
	BytesPerEntry int // fixed cost per person outside the arena and the ID map
}

// Stats reports the registry's footprint (the ID map's own overhead is not included).
func (m *Memory) Stats() MemoryStats {
	return MemoryStats{People: len(m.people), TextBytes: m.text.used(),
		BytesPerEntry: int(unsafe.Sizeof(entry{})) + 8 + 4}
}

// LoadStats counts what a load did.
type LoadStats struct {
	Loaded   int // lines that gave a person
	Replaced int // of which replaced an earlier line with the same ID
	Rejected int // bad lines
}

// Counter is told how many lines have been read; a progress display implements it.
type Counter interface{ Add(n int64) }

// LoadMemory reads a whole CSV extract into a new Memory. Each bad line goes to reject (a
// *LineError) and the load goes on; a bad header or an unreadable file ends it. progress,
// when not nil, is told about every line read.
func LoadMemory(r io.Reader, reject func(error), progress Counter) (*Memory, LoadStats, error) {
	var st LoadStats
	rd, err := NewReader(r)
	if err != nil {
		return nil, st, err
	}
	m := NewMemory(0)
	for p, err := range rd.All() {
		if progress != nil {
			progress.Add(1)
		}
		var le *LineError
		switch {
		case errors.As(err, &le):
			st.Rejected++
			if reject != nil {
				reject(err)
			}
			continue
		case err != nil:
			return nil, st, err
		}
		replaced, err := m.Add(p)
		if err != nil {
			return nil, st, err
		}
		st.Loaded++
		if replaced {
			st.Replaced++
		}
	}
	return m, st, nil
}

// packID turns a 9- or 12-digit number into an integer; the length is kept in bit 40 so
// that "000000001" and "000000000001" stay apart (10^12 < 2^40).
func packID(id string) uint64 {
	var v uint64
	for i := 0; i < len(id); i++ {
		v = v*10 + uint64(id[i]-'0')
	}
	if len(id) == 12 {
		v |= 1 << 40
	}
	return v
}

func dobYear(dob string) int {
	if len(dob) < 4 {
		return 0
	}
	return int(dob[0]-'0')*1000 + int(dob[1]-'0')*100 + int(dob[2]-'0')*10 + int(dob[3]-'0')
}

// arena stores immutable text in 1 MiB chunks. A reference is chunk<<chunkBits | offset;
// bytes once written never change, so strings may point into them.
type arena struct {
	chunks [][]byte
}

const (
	chunkBits = 20
	maxText   = 1 << chunkBits
	maxChunks = 1 << (32 - chunkBits)
)

func (a *arena) add(parts ...string) (uint32, error) {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	last := len(a.chunks) - 1
	if last < 0 || len(a.chunks[last])+n > maxText {
		if len(a.chunks) == maxChunks {
			return 0, fmt.Errorf("%w: registry text exceeds %d bytes", ErrPerson, maxChunks*maxText)
		}
		a.chunks = append(a.chunks, make([]byte, 0, maxText))
		last++
	}
	c := a.chunks[last]
	ref := uint32(last)<<chunkBits | uint32(len(c))
	for _, p := range parts {
		c = append(c, p...)
	}
	a.chunks[last] = c
	return ref, nil
}

func (a *arena) get(ref uint32, n int) string {
	c := a.chunks[ref>>chunkBits]
	off := int(ref & (maxText - 1))
	b := c[off : off+n]
	return unsafe.String(unsafe.SliceData(b), n)
}

func (a *arena) used() int {
	n := 0
	for _, c := range a.chunks {
		n += len(c)
	}
	return n
}

package embedded

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/tool/registry"
)

// Buckets of the registry.
var (
	// bucketRegistry: normalised ID number -> encoded person (see encodePerson).
	bucketRegistry = []byte("registry")
	// bucketRegistryNames: name key 0x00 birth year (4 digits) 0x00 ID number -> empty.
	// The candidate index: people with one name key and birth year are adjacent.
	bucketRegistryNames = []byte("registry_names")
	// bucketMeta: small counters, e.g. the number of registry people.
	bucketMeta = []byte("meta")

	keyRegistryCount = []byte("registry_count")

	allBuckets = [][]byte{bucketRegistry, bucketRegistryNames, bucketMeta}
)

// LoadBatchSize is how many people one write transaction of LoadRegistry holds. Each
// transaction rewrites every B+tree page it touches, and random IDs touch pages all over
// the tree, so bigger batches load faster (measured loading 1,000,000 people: 10,000 per
// batch took 31 s of CPU, 50,000 took 15-18 s).
const LoadBatchSize = 50_000

// RegistryLoadStats counts what LoadRegistry did.
type RegistryLoadStats struct {
	Added     int // new ID numbers
	Updated   int // ID numbers already held with other details
	Unchanged int // ID numbers already held with the same details
}

// Loaded is the number of people written or confirmed.
func (s RegistryLoadStats) Loaded() int { return s.Added + s.Updated + s.Unchanged }

// LoadRegistry stores people, LoadBatchSize per transaction, each replacing whoever held
// its ID number before. Loading the same people twice leaves the same state (the second
// load counts them Unchanged). People not in the input are kept: an extract may cover one
// province only. Each person goes through registry.Check; an invalid one ends the load
// with an error wrapping registry.ErrPerson (the batches before it stay stored; loading is
// idempotent, so fixing the input and loading again is safe). ctx is checked between
// batches.
func (db *DB) LoadRegistry(ctx context.Context, people iter.Seq[match.Person]) (RegistryLoadStats, error) {
	var st RegistryLoadStats
	batch := make([]match.Person, 0, LoadBatchSize)
	flush := func() error {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := db.bolt.Update(func(tx *bolt.Tx) error { return writePeople(tx, batch, &st) })
		batch = batch[:0]
		return err
	}
	n := 0
	for p := range people {
		n++
		checked, err := registry.Check(p)
		if err != nil {
			return st, fmt.Errorf("embedded: load registry: person %d: %w", n, err)
		}
		batch = append(batch, checked)
		if len(batch) == LoadBatchSize {
			if err := flush(); err != nil {
				return st, fmt.Errorf("embedded: load registry: %w", err)
			}
		}
	}
	if len(batch) > 0 {
		if err := flush(); err != nil {
			return st, fmt.Errorf("embedded: load registry: %w", err)
		}
	}
	return st, nil
}

// writePeople writes one batch. Sorting by ID (and the name-index changes by key) makes
// the B+tree writes sequential; the sort is stable so that of two lines with one ID the
// later still wins.
func writePeople(tx *bolt.Tx, batch []match.Person, st *RegistryLoadStats) error {
	people := tx.Bucket(bucketRegistry)
	slices.SortStableFunc(batch, func(a, b match.Person) int { return strings.Compare(a.IDNumber, b.IDNumber) })
	type indexChange struct {
		key []byte
		put bool
	}
	var changes []indexChange
	added := 0
	for _, p := range batch {
		// Fresh slices each time: bbolt keeps keys and values until the commit.
		id := []byte(p.IDNumber)
		v := encodePerson(nil, p)
		old := people.Get(id)
		switch {
		case old == nil:
			st.Added++
			added++
		case bytes.Equal(old, v):
			st.Unchanged++
			continue
		default:
			st.Updated++
			prev, err := decodePerson(p.IDNumber, old)
			if err != nil {
				return err
			}
			changes = append(changes, indexChange{nameIndexKey(prev), false})
		}
		if err := people.Put(id, v); err != nil {
			return err
		}
		changes = append(changes, indexChange{nameIndexKey(p), true})
	}
	// Stable: a delete and a put of one key (a person updated twice in the batch) keep
	// their order.
	slices.SortStableFunc(changes, func(a, b indexChange) int { return bytes.Compare(a.key, b.key) })
	names := tx.Bucket(bucketRegistryNames)
	for _, c := range changes {
		var err error
		if c.put {
			err = names.Put(c.key, nil)
		} else {
			err = names.Delete(c.key)
		}
		if err != nil {
			return err
		}
	}
	if added == 0 {
		return nil // nothing new to count: an unchanged re-load writes nothing
	}
	meta := tx.Bucket(bucketMeta)
	count := uint64(0)
	if v := meta.Get(keyRegistryCount); len(v) == 8 {
		count = binary.BigEndian.Uint64(v)
	}
	return meta.Put(keyRegistryCount, binary.BigEndian.AppendUint64(nil, count+uint64(added)))
}

// Registry is the database's population registry as the matcher uses it; it implements
// match.Registry and is safe for concurrent use.
type Registry struct{ db *DB }

// Registry returns the registry view of the database.
func (db *DB) Registry() *Registry { return &Registry{db: db} }

// Lookup implements match.Registry.
func (r *Registry) Lookup(id string) (p match.Person, found bool, err error) {
	err = r.db.bolt.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRegistry).Get([]byte(id))
		if v == nil {
			return nil
		}
		found = true
		p, err = decodePerson(id, v)
		return err
	})
	if err != nil {
		return match.Person{}, false, fmt.Errorf("embedded: registry lookup: %w", err)
	}
	return p, found, nil
}

// SameName implements match.Registry: a prefix scan of the name index. visit runs inside a
// read transaction: it must not write to the database.
func (r *Registry) SameName(nameKey string, birthYear int, visit func(match.Person) bool) error {
	if birthYear < 0 || birthYear > 9999 || strings.IndexByte(nameKey, 0) >= 0 {
		return nil
	}
	prefix := fmt.Appendf(nil, "%s\x00%04d\x00", nameKey, birthYear)
	err := r.db.bolt.View(func(tx *bolt.Tx) error {
		people := tx.Bucket(bucketRegistry)
		c := tx.Bucket(bucketRegistryNames).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			id := string(k[len(prefix):])
			v := people.Get([]byte(id))
			if v == nil {
				return fmt.Errorf("name index points to a missing person")
			}
			p, err := decodePerson(id, v)
			if err != nil {
				return err
			}
			if !visit(p) {
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("embedded: registry candidates: %w", err)
	}
	return nil
}

// Count returns the number of people in the registry.
func (r *Registry) Count() (int, error) {
	var n uint64
	err := r.db.bolt.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyRegistryCount); len(v) == 8 {
			n = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	return int(n), err
}

func nameIndexKey(p match.Person) []byte {
	return fmt.Appendf(nil, "%s\x00%s\x00%s", p.NameKey, p.DOB[:4], p.IDNumber)
}

// Person encoding, version 1:
//
//	0x01 | gender ('m' or 'f') | dob (10 bytes) | uvarint len + full name | name key
const personV1 = 1

func encodePerson(dst []byte, p match.Person) []byte {
	g := byte('m')
	if p.Gender == dose.Female {
		g = 'f'
	}
	dst = append(dst, personV1, g)
	dst = append(dst, p.DOB...)
	dst = binary.AppendUvarint(dst, uint64(len(p.FullName)))
	dst = append(dst, p.FullName...)
	return append(dst, p.NameKey...)
}

var errCorrupt = errors.New("corrupt registry entry")

// decodePerson copies v (valid only inside its transaction) into a Person.
func decodePerson(id string, v []byte) (match.Person, error) {
	if len(v) < 12 || v[0] != personV1 {
		return match.Person{}, errCorrupt
	}
	p := match.Person{IDNumber: id, Gender: dose.Male, DOB: string(v[2:12])}
	if v[1] == 'f' {
		p.Gender = dose.Female
	}
	n, size := binary.Uvarint(v[12:])
	rest := v[12+max(size, 0):]
	if size <= 0 || n > uint64(len(rest)) {
		return match.Person{}, errCorrupt
	}
	text := string(rest) // one allocation for name and key
	p.FullName, p.NameKey = text[:n], text[n:]
	return p, nil
}

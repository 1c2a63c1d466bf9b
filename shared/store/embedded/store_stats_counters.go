package embedded

// The dashboard's counters (shared/stage/stats): every write of a dose, a certificate or a
// person's first signature at a facility updates them in its own transaction, so they
// always equal a count of the records and reading them costs the number of counters.
//
// A database written before the counters existed gets them counted once from its records
// (statsEnsure): by EnsureStats, or else in the first write or read that needs them; the
// store_meta key statsReadyKey records that it was done. Every counted write runs its
// hook before it changes a record, so a count made in its transaction sees the records as
// they were and the hook then adds the write.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/vaxpass/vaxpass/shared/stage/stats"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

var (
	// storeBucketStats: scope kind | scope ID 0 metric (stats.EncodeMetric) -> int64
	// (8 bytes, big endian). Counters at zero are deleted.
	storeBucketStats = []byte("stats_counters")
	// storeBucketStatsPeople: person -> JSON of the person's stats.PersonMetrics (encoded
	// metric -> n), what a facility gains when it first signs for the person.
	storeBucketStatsPeople = []byte("stats_people")
	// statsReadyKey (in store_meta) is set once the counters count every record. It is
	// "_2" since the counters count communes: a database counted before is counted again.
	statsReadyKey = []byte("stats_counters_ready_2")
)

// EnsureStats counts the dashboard's counters from the records if they never were (a
// database written before they existed): one scan of every dose and certificate, in one
// write transaction, about 7 µs a dose; then it records that it was done, and later calls
// cost one read. Calling it when the store is opened keeps that scan out of the first
// write or read that would otherwise make it.
func (s *Store) EnsureStats(ctx context.Context) error {
	var ready bool
	err := s.storeView(ctx, func(tx *bolt.Tx) error {
		ready = tx.Bucket(storeBucketMeta).Get(statsReadyKey) != nil
		return nil
	})
	if err == nil && !ready {
		err = s.storeUpdate(ctx, statsEnsure)
	}
	if err != nil {
		return fmt.Errorf("embedded: count the dashboard's counters: %w", err)
	}
	return nil
}

// StatCounters implements stats.Counters: every counter, issued certificates by expiry
// day for the days from..to (EnsureStats first).
func (s *Store) StatCounters(ctx context.Context, from, to string) (*stats.Tally, error) {
	err := s.EnsureStats(ctx)
	t := stats.NewTally()
	if err == nil {
		err = s.storeView(ctx, func(tx *bolt.Tx) error {
			c := tx.Bucket(storeBucketStats).Cursor()
			for k, v := c.First(); k != nil; k, v = c.Next() {
				if k[0] == byte(stats.InCommune) {
					// A province's drill-down reads them (StatCommunes): skip them all,
					// some 10,000 communes' counters in a national store.
					if k, v = c.Seek([]byte{byte(stats.InCommune) + 1}); k == nil {
						break
					}
				}
				key, n, err := statsDecode(k, v)
				if err != nil {
					return err
				}
				if err := t.Add(key, n, from, to); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("embedded: dashboard counters: %w", err)
	}
	return t, nil
}

// statsCountDose counts the write of d in place of old (nil: a new dose). It runs before the
// write, in its transaction.
func statsCountDose(tx *bolt.Tx, old, d *vaxpass.Dose) error {
	if err := statsEnsure(tx); err != nil {
		return err
	}
	delta := stats.Delta{}
	delta.AddDose(old, d)
	return statsApply(tx, delta)
}

// statsCountCert counts the write of c in place of old (nil: a new certificate), at the
// facilities holding a signature for its person, and keeps the person's metrics. It runs
// before the write, in its transaction.
func statsCountCert(tx *bolt.Tx, old, c *vaxpass.Certificate) error {
	if err := statsEnsure(tx); err != nil {
		return err
	}
	change := stats.CertificateChange(old, c)
	if change.Empty() {
		return nil
	}
	delta := stats.Delta{}
	delta.AddCertificate(change, statsFacilities(tx, c.PersonID))
	if err := statsApply(tx, delta); err != nil {
		return err
	}
	p, err := statsPerson(tx, c.PersonID)
	if err != nil {
		return err
	}
	p.Apply(change)
	return statsPutPerson(tx, c.PersonID, p)
}

// statsFirstSignature counts the person's certificates at a facility that signs for
// them for the first time. It runs before the signature is stored, in its transaction.
func statsFirstSignature(tx *bolt.Tx, personID, facilityID string) error {
	if err := statsEnsure(tx); err != nil {
		return err
	}
	p, err := statsPerson(tx, personID)
	if err != nil {
		return err
	}
	delta := stats.Delta{}
	delta.AddFacility(facilityID, p)
	return statsApply(tx, delta)
}

// statsFacilities lists the facilities holding a signature for a person.
func statsFacilities(tx *bolt.Tx, personID string) []string {
	var out []string
	prefix := storePrefix(personID)
	c := tx.Bucket(storeBucketFacilitySigs).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		out = append(out, string(k[len(prefix):]))
	}
	return out
}

// statsEnsure makes the counters count every record: when they never did, it creates
// their buckets and counts every dose and certificate (a scan, once per database).
func statsEnsure(tx *bolt.Tx) error {
	meta := tx.Bucket(storeBucketMeta)
	if meta.Get(statsReadyKey) != nil {
		return nil
	}
	for _, name := range [][]byte{storeBucketStats, storeBucketStatsPeople} {
		if tx.Bucket(name) != nil {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		if _, err := tx.CreateBucket(name); err != nil {
			return fmt.Errorf("bucket %s: %w", name, err)
		}
	}
	delta := stats.Delta{}
	err := tx.Bucket(storeBucketDoses).ForEach(func(k, v []byte) error {
		var d statsDose
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("%w: dose %q: %w", storeErrCorrupt, k, err)
		}
		dose := vaxpass.Dose{FacilityID: d.FacilityID}
		dose.IDNumber, dose.CommuneCode, dose.Match.Status = d.IDNumber, d.CommuneCode, d.Match.Status
		delta.AddDose(nil, &dose)
		return nil
	})
	if err != nil {
		return fmt.Errorf("count doses: %w", err)
	}
	people := map[string]stats.PersonMetrics{}
	err = tx.Bucket(storeBucketCerts).ForEach(func(k, v []byte) error {
		var sc statsCert
		if err := json.Unmarshal(v, &sc); err != nil {
			return fmt.Errorf("%w: certificate %q: %w", storeErrCorrupt, k, err)
		}
		c := vaxpass.Certificate{PersonID: sc.PersonID, Status: sc.Status, IssuedAt: sc.IssuedAt, ExpiresAt: sc.ExpiresAt}
		change := stats.CertificateChange(nil, &c)
		delta.AddCertificate(change, statsFacilities(tx, c.PersonID))
		if people[c.PersonID] == nil {
			people[c.PersonID] = stats.PersonMetrics{}
		}
		people[c.PersonID].Apply(change)
		return nil
	})
	if err != nil {
		return fmt.Errorf("count certificates: %w", err)
	}
	if err := statsApply(tx, delta); err != nil {
		return err
	}
	for _, person := range slices.Sorted(maps.Keys(people)) { // in key order, as statsApply
		if person == "" {
			continue
		}
		if err := statsPutPerson(tx, person, people[person]); err != nil {
			return err
		}
	}
	return meta.Put(statsReadyKey, []byte{1})
}

// statsApply adds delta to the stored counters, in key order: bbolt splits a node only
// at commit, so many inserts out of order into one node cost quadratic time (a backfill
// writes hundreds of thousands).
func statsApply(tx *bolt.Tx, delta stats.Delta) error {
	b := tx.Bucket(storeBucketStats)
	type entry struct {
		key []byte
		n   int64
	}
	entries := make([]entry, 0, len(delta))
	for k, n := range delta {
		entries = append(entries, entry{statsKey(k), n})
	}
	slices.SortFunc(entries, func(a, b entry) int { return bytes.Compare(a.key, b.key) })
	for _, e := range entries {
		key, n := e.key, e.n
		if v := b.Get(key); len(v) == 8 {
			n += int64(binary.BigEndian.Uint64(v))
		}
		var err error
		if n == 0 {
			err = b.Delete(key)
		} else {
			err = b.Put(key, binary.BigEndian.AppendUint64(nil, uint64(n)))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// statsKey is a counter's key: scope kind, scope ID, NUL, metric. Scope IDs are province
// codes and facility IDs, which hold no NUL byte (storeCheckPart).
func statsKey(k stats.Key) []byte {
	m := stats.EncodeMetric(k.Metric)
	b := make([]byte, 0, 2+len(k.Scope.ID)+len(m))
	b = append(b, byte(k.Scope.Kind))
	b = append(b, k.Scope.ID...)
	b = append(b, 0)
	return append(b, m...)
}

func statsDecode(k, v []byte) (stats.Key, int64, error) {
	i := bytes.IndexByte(k, 0)
	if i < 1 || len(v) != 8 {
		return stats.Key{}, 0, fmt.Errorf("%w: dashboard counter %q", storeErrCorrupt, k)
	}
	m, err := stats.DecodeMetric(string(k[i+1:]))
	if err != nil {
		return stats.Key{}, 0, fmt.Errorf("%w: dashboard counter %q: %w", storeErrCorrupt, k, err)
	}
	key := stats.Key{Scope: stats.Scope{Kind: stats.ScopeKind(k[0]), ID: string(k[1:i])}, Metric: m}
	return key, int64(binary.BigEndian.Uint64(v)), nil
}

func statsPerson(tx *bolt.Tx, personID string) (stats.PersonMetrics, error) {
	p := stats.PersonMetrics{}
	v := tx.Bucket(storeBucketStatsPeople).Get([]byte(personID))
	if v == nil {
		return p, nil
	}
	var raw map[string]int64
	if err := json.Unmarshal(v, &raw); err != nil {
		return nil, fmt.Errorf("%w: dashboard metrics of a person: %w", storeErrCorrupt, err)
	}
	for s, n := range raw {
		m, err := stats.DecodeMetric(s)
		if err != nil {
			return nil, fmt.Errorf("%w: dashboard metrics of a person: %w", storeErrCorrupt, err)
		}
		p[m] = n
	}
	return p, nil
}

func statsPutPerson(tx *bolt.Tx, personID string, p stats.PersonMetrics) error {
	b := tx.Bucket(storeBucketStatsPeople)
	if len(p) == 0 {
		return b.Delete([]byte(personID))
	}
	raw := make(map[string]int64, len(p))
	for m, n := range p {
		raw[stats.EncodeMetric(m)] = n
	}
	v, err := json.Marshal(raw)
	if err != nil {
		return err
	}
	return b.Put([]byte(personID), v)
}

package stats

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/vaxpass/vaxpass/shared/domain/match"
)

// CommuneCounters are a province's commune rows, read apart from StatCounters: a
// country has some 10,000 communes, which the dashboard's first page never needs.
type CommuneCounters interface {
	// StatCommunes reads the commune rows (Tally.Communes, doses only) of one province,
	// summed over the store's shards.
	StatCommunes(ctx context.Context, province string) (*Tally, error)
}

// ProvinceCommunes is a province's drill-down: its doses by the commune code of their
// records. Certificates are not counted per commune (a certificate belongs to a person,
// not to a record's commune).
type ProvinceCommunes struct {
	Province string `json:"province"`
	Name     string `json:"name"`
	// Communes lists the communes with doses, by code.
	Communes []Commune `json:"communes"`
	// WithoutCommune counts the province's doses whose record has no commune code.
	WithoutCommune DoseCounts `json:"without_commune"`
}

// Commune is a commune's row.
type Commune struct {
	Code string `json:"code"`
	DoseCounts
}

// DoseCounts are dose records and their split by match status (every status present).
type DoseCounts struct {
	Doses    int                  `json:"doses"`
	ByStatus map[match.Status]int `json:"by_status"`
}

// Query selects what a snapshot holds beyond the country's numbers.
type Query struct {
	// Province, when set, adds that province's communes (Snapshot.Communes): a code of
	// Snapshot.Provinces, or UnknownProvince.
	Province string
}

// SnapshotOf is Snapshot with what q asks for. A province code that names no row of
// Snapshot.Provinces gets an empty drill-down, without a read: no record counts there.
func (s *Service) SnapshotOf(ctx context.Context, q Query) (Snapshot, error) {
	snap, err := s.Snapshot(ctx)
	if err != nil || q.Province == "" {
		return snap, err
	}
	pc := &ProvinceCommunes{Province: q.Province, Communes: []Commune{}, WithoutCommune: newDoseCounts()}
	snap.Communes = pc
	i := slices.IndexFunc(snap.Provinces, func(p Province) bool { return p.Code == q.Province })
	if i < 0 {
		return snap, nil
	}
	prov := snap.Provinces[i]
	pc.Name = prov.Name
	cc, ok := s.Counters.(CommuneCounters)
	if !ok {
		return Snapshot{}, fmt.Errorf("stats: the store keeps no commune counters")
	}
	t, err := cc.StatCommunes(ctx, q.Province)
	if err != nil {
		return Snapshot{}, fmt.Errorf("stats: read the communes of province %q: %w", q.Province, err)
	}
	inCommunes := newDoseCounts()
	for id, r := range t.Communes {
		prov, code, ok := SplitCommuneScopeID(id)
		if !ok || prov != q.Province {
			continue
		}
		c := Commune{Code: code, DoseCounts: doseCountsOf(r)}
		if c.Doses == 0 {
			continue
		}
		inCommunes.add(c.DoseCounts)
		pc.Communes = append(pc.Communes, c)
	}
	slices.SortFunc(pc.Communes, func(a, b Commune) int { return cmp.Compare(a.Code, b.Code) })
	// The province's doses less those counted in a commune. The two reads are not one
	// transaction: a write between them may leave this off by its doses.
	for _, st := range Statuses {
		n := max(prov.ByStatus[st]-inCommunes.ByStatus[st], 0)
		pc.WithoutCommune.ByStatus[st] = n
		pc.WithoutCommune.Doses += n
	}
	return snap, nil
}

func newDoseCounts() DoseCounts {
	c := DoseCounts{ByStatus: make(map[match.Status]int, len(Statuses))}
	for _, st := range Statuses {
		c.ByStatus[st] = 0
	}
	return c
}

func doseCountsOf(r *Row) DoseCounts {
	c := newDoseCounts()
	for st, n := range r.Doses {
		if n != 0 {
			c.ByStatus[st] += int(n)
			c.Doses += int(n)
		}
	}
	return c
}

func (c *DoseCounts) add(o DoseCounts) {
	c.Doses += o.Doses
	for st, n := range o.ByStatus {
		c.ByStatus[st] += n
	}
}

package faults

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/domain/vaccine"
	"github.com/vaxpass/vaxpass/shared/tool/synth"
)

// Sizes of the runs.
const (
	// defaultPeople is the registry size when VAXPASS_FAULT_PEOPLE is unset: small enough
	// for CI, large enough that the kills land on work in progress.
	defaultPeople = 3000
	// recordsPerPerson: dose records generated per registry person (the vaccinated
	// people have one to four doses each).
	recordsPerPerson = 2
	// batchSize is the records of one upload (the API's limit).
	batchSize = 1000
	// facilityCount is how many facilities the records are spread over: a person's
	// booster is often given at another site, so some people need two facilities'
	// signatures before central signing can issue their certificate.
	facilityCount = 3
)

// envInt reads a positive integer from the environment.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

// faultPeople is the registry size of the bulk runs.
func faultPeople(t *testing.T) int { return envInt(t, "VAXPASS_FAULT_PEOPLE", defaultPeople) }

// facilityID names facility i of a run.
func facilityID(i int) string { return fmt.Sprintf("fault-site-%d", i) }

// doseKey identifies one record: the facility that uploaded it and its source_id.
type doseKey struct {
	Facility string
	SourceID string
}

func (k doseKey) String() string { return k.Facility + "/" + k.SourceID }

// population is one generated run: the registry file, the records in generation order
// with their ground truth, and which facility uploads each record.
type population struct {
	dir      string
	registry string // path of the registry CSV
	raw      []json.RawMessage
	records  []dose.Record
	truth    []synth.Truth
	facility []int           // facility index of each record
	index    map[doseKey]int // record index by key
}

// generate writes a population with shared/tool/synth (the matching issue's generator) and
// reads it back.
func generate(t *testing.T, people, records int, seed uint64) *population {
	t.Helper()
	dir := t.TempDir()
	if _, err := synth.WriteDir(context.Background(), dir, synth.Config{People: people, Records: records, Seed: seed}, nil); err != nil {
		t.Fatalf("generate: %v", err)
	}
	p := &population{dir: dir, registry: filepath.Join(dir, synth.RegistryFile), index: map[doseKey]int{}}
	f, err := os.Open(filepath.Join(dir, synth.RecordsFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		raw := bytes.Clone(sc.Bytes())
		var rec dose.Record
		if err := json.Unmarshal(raw, &rec); err != nil {
			t.Fatalf("records line %d: %v", len(p.raw)+1, err)
		}
		fac := facilityOf(rec.SourceID)
		p.index[doseKey{facilityID(fac), rec.SourceID}] = len(p.raw)
		p.raw = append(p.raw, raw)
		p.records = append(p.records, rec)
		p.facility = append(p.facility, fac)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	tf, err := os.Open(filepath.Join(dir, synth.TruthFile))
	if err != nil {
		t.Fatal(err)
	}
	defer tf.Close()
	if err := synth.ReadTruth(tf, func(tr synth.Truth) error {
		p.truth = append(p.truth, tr)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(p.truth) != len(p.records) {
		t.Fatalf("%d truth lines for %d records", len(p.truth), len(p.records))
	}
	for i, tr := range p.truth {
		if tr.SourceID != p.records[i].SourceID {
			t.Fatalf("truth line %d is for %s, record %s", i+1, tr.SourceID, p.records[i].SourceID)
		}
	}
	return p
}

// facilityOf spreads the generator's vaccination sites (the "F038019" of a source_id)
// over the run's facilities, so that a site's records always go to the same facility.
func facilityOf(sourceID string) int {
	site := sourceID
	if len(site) > 7 {
		site = site[:7]
	}
	h := fnv.New32a()
	h.Write([]byte(site))
	return int(h.Sum32() % facilityCount)
}

func (p *population) key(i int) doseKey {
	return doseKey{facilityID(p.facility[i]), p.records[i].SourceID}
}

// batch is one upload: a facility and the indexes of its records.
type batch struct {
	facility int
	records  []int
}

// batches cuts each facility's records (in generation order) into uploads of at most
// batchSize and interleaves the facilities, as sites uploading side by side would.
func (p *population) batches() []batch {
	var per [facilityCount][]int
	for i, f := range p.facility {
		per[f] = append(per[f], i)
	}
	var out []batch
	for more := true; more; {
		more = false
		for f := range per {
			if len(per[f]) == 0 {
				continue
			}
			n := min(batchSize, len(per[f]))
			out = append(out, batch{facility: f, records: per[f][:n]})
			per[f] = per[f][n:]
			more = more || len(per[f]) > 0
		}
	}
	return out
}

// body is the upload body of a batch.
func (p *population) body(b batch) []byte {
	recs := make([]json.RawMessage, len(b.records))
	for j, i := range b.records {
		recs[j] = p.raw[i]
	}
	body, err := json.Marshal(map[string]any{"records": recs})
	if err != nil {
		panic(err)
	}
	return body
}

// expectation is what a run must end with, derived from the generator's truth and the
// records the server acknowledged -- never from what the server stored.
type expectation struct {
	// status of every acknowledged record, and its person when VERIFIED.
	status map[doseKey]match.Status
	person map[doseKey]string
	// assessment of every person with at least one acknowledged VERIFIED record: their
	// verified doses across all facilities, through vaccine.Assess.
	assessment map[string]vaccine.Assessment
	// verified are each person's acknowledged VERIFIED records.
	verified map[string][]doseKey
}

// expect derives the expectation from the acknowledged records.
func (p *population) expect(acked map[doseKey]bool) (expectation, error) {
	e := expectation{
		status: map[doseKey]match.Status{}, person: map[doseKey]string{},
		assessment: map[string]vaccine.Assessment{}, verified: map[string][]doseKey{},
	}
	doses := map[string][]vaccine.Dose{}
	for k := range acked {
		i, ok := p.index[k]
		if !ok {
			return e, fmt.Errorf("acknowledged record %s was never generated", k)
		}
		tr := p.truth[i]
		e.status[k] = tr.Status
		if tr.Status == match.Verified {
			r := p.records[i]
			e.person[k] = tr.RegistryID
			e.verified[tr.RegistryID] = append(e.verified[tr.RegistryID], k)
			doses[tr.RegistryID] = append(doses[tr.RegistryID], vaccine.Dose{Vaccine: vaccine.Code(r.Vaccine), DoseNumber: r.DoseNumber, VaccinatedOn: r.VaccinatedOn})
		}
	}
	for person, ds := range doses {
		a, err := vaccine.Assess(ds)
		if err != nil {
			return e, fmt.Errorf("assess the generated doses of a person: %w", err)
		}
		e.assessment[person] = a
	}
	return e, nil
}

// eligible counts the eligible people of an expectation.
func (e expectation) eligible() int {
	n := 0
	for _, a := range e.assessment {
		if a.Eligible {
			n++
		}
	}
	return n
}

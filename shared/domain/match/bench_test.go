package match_test

import (
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/tool/registry"
	"github.com/vaxpass/vaxpass/shared/tool/registry/registrytest"
)

// BenchmarkMatch matches a realistic mix of records (see registrytest.Records) against a
// 1,000,000-person in-memory registry and reports records/s.
func BenchmarkMatch(b *testing.B) {
	const people, records = 1_000_000, 200_000
	pop := registrytest.Population(people, 1)
	reg := registry.NewMemory(people)
	for _, p := range pop {
		if _, err := reg.Add(p); err != nil {
			b.Fatal(err)
		}
	}
	recs := registrytest.Records(pop, records, 2)
	m := &match.Matcher{Registry: reg, Now: func() time.Time { return time.Date(2022, 6, 1, 0, 0, 0, 0, time.UTC) }}
	if _, err := m.Match(recs[0]); err != nil { // builds the candidate index outside the timer
		b.Fatal(err)
	}
	counts := map[match.Status]int{}
	for _, r := range recs[:10000] {
		res, _ := m.Match(r)
		counts[res.Status]++
	}
	b.Logf("status mix of the first 10000 records: %v", counts)

	b.ReportAllocs()
	b.ResetTimer()
	cpu0, cpuOK := cpuTime()
	i := 0
	for b.Loop() {
		if _, err := m.Match(recs[i%records]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "records/s")
	// Match is single-threaded here, so CPU time ~ one core's time (GC workers add a bit).
	if cpu1, ok := cpuTime(); ok && cpuOK && cpu1 > cpu0 {
		b.ReportMetric(float64(i)/(cpu1-cpu0).Seconds(), "records/cpu-s")
	}
}

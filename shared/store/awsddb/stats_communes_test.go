package awsddb_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/store/awsddb"
	"github.com/vaxpass/vaxpass/shared/testkit/awstest"
	"github.com/vaxpass/vaxpass/shared/testkit/storetest"
)

// A province's commune rows count its doses by the commune of their records, apart from
// the rows StatCounters reads; RebuildStats counts them again from the records.
func TestStatCommunes(t *testing.T) {
	cfg := awstest.Config(t)
	client := dynamodb.NewFromConfig(cfg)
	// Few shards, so that writes share items.
	s, names := openStore(t, client, awsddb.Options{StatsShards: 2, StatsFacilityShards: 2})
	storetest.CheckCommuneStats(t, s, "c-")

	if n := dropStats(t, client, names.Certificates); n == 0 {
		t.Fatal("no counter items found to drop")
	}
	if _, err := s.RebuildStats(t.Context()); err != nil {
		t.Fatal(err)
	}
	tl, err := s.StatCommunes(t.Context(), "001")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[match.Status]int64{"001/9910001": {match.Verified: 1}, "001/9910002": {match.Pending: 2}}
	if len(tl.Communes) != len(want) {
		t.Errorf("rebuilt communes of 001: %d rows, want %d", len(tl.Communes), len(want))
	}
	for id, w := range want {
		r := tl.Communes[id]
		for st, n := range w {
			if r == nil || r.Doses[st] != n {
				t.Errorf("rebuilt %s: %+v, want %v", id, r, w)
			}
		}
	}
	storetest.CheckCommuneStats(t, s, "d-")
	if _, err := s.StatCommunes(t.Context(), "0/1"); err == nil {
		t.Error("a province with a slash was read")
	}
}

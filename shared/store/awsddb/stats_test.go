package awsddb_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/vaxpass/vaxpass/shared/stage/stats"
	"github.com/vaxpass/vaxpass/shared/store/awsddb"
	"github.com/vaxpass/vaxpass/shared/testkit/awstest"
	"github.com/vaxpass/vaxpass/shared/testkit/storetest"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// dropStats deletes every counter and person metrics item: tables as written before the
// counters existed.
func dropStats(t *testing.T, client *dynamodb.Client, table string) int {
	t.Helper()
	ctx := t.Context()
	dropped := 0
	in := &dynamodb.ScanInput{TableName: aws.String(table)}
	for {
		out, err := client.Scan(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range out.Items {
			pk := item["pk"].(*ddbtypes.AttributeValueMemberS).Value
			sk := item["sk"].(*ddbtypes.AttributeValueMemberS).Value
			if strings.HasPrefix(pk, "STATS#") || strings.HasPrefix(pk, "PERSON#") && sk == "STATS" {
				if _, err := client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table), Key: map[string]ddbtypes.AttributeValue{"pk": item["pk"], "sk": item["sk"]}}); err != nil {
					t.Fatal(err)
				}
				dropped++
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return dropped
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// RebuildStats recounts the counters of tables written without them, and the counters
// it writes (person metrics included) are kept right by the writes that follow.
func TestRebuildStats(t *testing.T) {
	cfg := awstest.Config(t)
	client := dynamodb.NewFromConfig(cfg)
	ctx := t.Context()
	// Few shards, so that rebuilt counters and later writes share items.
	s, names := openStore(t, client, awsddb.Options{StatsShards: 2, StatsFacilityShards: 1})
	facs := storetest.StatsWorkload(t, s)
	storetest.CheckStats(t, s, facs)

	if n := dropStats(t, client, names.Certificates); n == 0 {
		t.Fatal("no counter items found to drop")
	}
	if got, err := s.StatCounters(ctx, storetest.AllDaysFrom, storetest.AllDaysTo); err != nil || storetest.DiffTallies(stats.NewTally(), got) != "" {
		t.Fatalf("counters after dropping them: %v", err)
	}
	rep, err := s.RebuildStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Doses != 23 || rep.Certificates != 9 || rep.People < 8 || rep.Items == 0 {
		t.Errorf("rebuild report %+v", rep)
	}
	storetest.CheckStats(t, s, facs)

	// A new facility for a person with certificates, and a supersession, after the rebuild.
	person := "001090012345"
	if err := s.PutFacilitySignature(ctx, vaxpass.FacilitySignature{PersonID: person, FacilityID: "sf4", Payload: []byte("p"), Signature: []byte("s"), SignedAt: time.Date(2021, 9, 2, 8, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	active, err := s.ActiveCertificate(ctx, person)
	if err != nil {
		t.Fatal(err)
	}
	next := active
	next.UVCI, next.Replaces, next.Version = "URN:UVCI:01:VN:STATSA9", active.UVCI, 1
	if err := s.ReplaceCertificate(ctx, next, &active); err != nil {
		t.Fatal(err)
	}
	got := storetest.CheckStats(t, s, append(facs, "sf4"))
	if f := got.Facilities["sf4"]; f == nil || f.Revoked != 2 {
		t.Errorf("sf4 after signing for a person with two revoked certificates and a new one: %+v", f)
	}

	// Again on counters that are right: the same counters.
	if _, err := s.RebuildStats(ctx); err != nil {
		t.Fatal(err)
	}
	storetest.CheckStats(t, s, append(facs, "sf4"))
}

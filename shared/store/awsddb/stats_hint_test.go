package awsddb_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/vaxpass/vaxpass/shared/store/awsddb"
	"github.com/vaxpass/vaxpass/shared/testkit/awstest"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// The person's metrics item read with their signatures saves the certificate write its
// own read; a hint gone stale (another instance signed the person for a second facility
// in between) cancels the transaction, is read again, and the counters end as a full
// recount makes them.
func TestStatsHintFromSignatures(t *testing.T) {
	client := dynamodb.NewFromConfig(awstest.Config(t))
	_, names := openStore(t, client, awsddb.Options{})
	counter := &getCounter{Client: client, gets: map[string]int{}}
	s, err := awsddb.New(counter, names, awsddb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	other, err := awsddb.New(client, names, awsddb.Options{}) // another Lambda instance
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	at := time.Date(2022, 3, 1, 2, 0, 0, 0, time.UTC)
	sig := func(person, facility string) vaxpass.FacilitySignature {
		return vaxpass.FacilitySignature{PersonID: person, FacilityID: facility, SignedAt: at, Payload: []byte("p"), Signature: []byte("s")}
	}
	cert := func(person, uvci string) vaxpass.Certificate {
		return vaxpass.Certificate{UVCI: uvci, PersonID: person, HC1: "HC1:" + uvci, Status: vaxpass.CertIssued,
			IssuedAt: at, ExpiresAt: at.AddDate(1, 0, 0), KID: "k", Version: 1}
	}

	// Fresh hint: no GetItem of the metrics item by the write.
	const fresh, stale = "079190000011", "079190000012"
	if err := s.PutFacilitySignature(ctx, sig(fresh, "hint-a")); err != nil {
		t.Fatal(err)
	}
	if sigs, err := s.FacilitySignatures(ctx, fresh); err != nil || len(sigs) != 1 {
		t.Fatalf("signatures: %v, %v", sigs, err)
	}
	counter.take()
	if err := s.ReplaceCertificate(ctx, cert(fresh, "URN:UVCI:01:VN:HINT1#A"), nil); err != nil {
		t.Fatal(err)
	}
	if gets := counter.take(); gets["STATS"] != 0 {
		t.Errorf("the write read the metrics item %d times after the signatures brought it, want 0", gets["STATS"])
	}

	// Stale hint: the other instance adds a facility after the read.
	if err := s.PutFacilitySignature(ctx, sig(stale, "hint-a")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FacilitySignatures(ctx, stale); err != nil {
		t.Fatal(err)
	}
	if err := other.PutFacilitySignature(ctx, sig(stale, "hint-b")); err != nil {
		t.Fatal(err)
	}
	counter.take()
	if err := s.ReplaceCertificate(ctx, cert(stale, "URN:UVCI:01:VN:HINT2#B"), nil); err != nil {
		t.Fatal(err)
	}
	if gets := counter.take(); gets["STATS"] != 1 {
		t.Errorf("after a stale hint the write read the metrics item %d times, want once (the retry)", gets["STATS"])
	}
	counted, err := s.StatCounters(ctx, "0000-01-01", "9999-12-31")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RebuildStats(ctx); err != nil {
		t.Fatal(err)
	}
	recounted, err := s.StatCounters(ctx, "0000-01-01", "9999-12-31")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"hint-a", "hint-b"} {
		if counted.Facilities[f] == nil {
			t.Errorf("facility %s has no row", f)
		}
		if !reflect.DeepEqual(counted.Facilities[f], recounted.Facilities[f]) {
			t.Errorf("facility %s counted %+v, a recount says %+v", f, counted.Facilities[f], recounted.Facilities[f])
		}
	}
	if !reflect.DeepEqual(counted.Issuance, recounted.Issuance) {
		t.Errorf("issuance counted %v, a recount says %v", counted.Issuance, recounted.Issuance)
	}
}

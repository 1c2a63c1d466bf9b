package awsddb_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/vaxpass/vaxpass/shared/store/awsddb"
	"github.com/vaxpass/vaxpass/shared/testkit/awstest"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// putLegacyCert writes a certificate as the store did before by_expiry was sharded: its
// partition the month alone, registered so.
func putLegacyCert(t *testing.T, client *dynamodb.Client, table string, c vaxpass.Certificate) {
	t.Helper()
	doc, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	key := strings.ToUpper(c.UVCI)
	exp := c.ExpiresAt.UTC().Format("2006-01-02T15:04:05.000000000Z")
	s := func(v string) ddbtypes.AttributeValue { return &ddbtypes.AttributeValueMemberS{Value: v} }
	items := []map[string]ddbtypes.AttributeValue{
		{"pk": s("CERT#" + key), "sk": s("CERT"), "uvci": s(key), "list_shard": s(key[:16]), "status": s(c.Status),
			"version": &ddbtypes.AttributeValueMemberN{Value: fmt.Sprint(c.Version)}, "person_id": s(c.PersonID),
			"expires_at": s(exp), "doc": s(string(doc)), "exp_month": s(exp[:7]), "exp_key": s(exp + "#" + key)},
		{"pk": s("PERSON#" + c.PersonID), "sk": s("ACTIVE"), "uvci": s(key),
			"version": &ddbtypes.AttributeValueMemberN{Value: fmt.Sprint(c.Version)}, "doc": s(string(doc))},
		{"pk": s("SHARDS#EXPIRY"), "sk": s(exp[:7])},
		{"pk": s("SHARDS#LIST"), "sk": s(key[:16])},
	}
	for _, it := range items {
		if _, err := client.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: it}); err != nil {
			t.Fatal(err)
		}
	}
}

func expCert(i int, exp time.Time) vaxpass.Certificate {
	return vaxpass.Certificate{UVCI: fmt.Sprintf("URN:UVCI:01:VN:%c%03dEXP#Z", 'A'+rune(i%26), i), PersonID: fmt.Sprintf("0790959%05d", i),
		HC1: "HC1:X", Status: vaxpass.CertIssued, IssuedAt: exp.AddDate(-1, 0, 0), ExpiresAt: exp, KID: "k", Version: 1}
}

// by_expiry spread over partitions: each partition lists its certificates in order,
// together exactly the whole listing, which merges them (and the legacy partition of
// items written before) in order; the latest expiry sees every partition; a legacy item
// renewed moves to its partition.
func TestExpiryShards(t *testing.T) {
	client := dynamodb.NewFromConfig(awstest.Config(t))
	s, names := openStore(t, client, awsddb.Options{})
	ctx := t.Context()
	start := time.Date(2027, 1, 30, 0, 0, 0, 0, time.UTC)
	var all []vaxpass.Certificate
	for i := range 60 {
		c := expCert(i, start.Add(time.Duration(i)*17*time.Hour)) // over three months
		if i%10 == 3 {
			putLegacyCert(t, client, names.Certificates, c)
		} else if err := s.ReplaceCertificate(ctx, c, nil); err != nil {
			t.Fatal(err)
		}
		all = append(all, c)
	}
	byKey := func(a, b vaxpass.Certificate) int {
		if c := a.ExpiresAt.Compare(b.ExpiresAt); c != 0 {
			return c
		}
		return strings.Compare(strings.ToUpper(a.UVCI), strings.ToUpper(b.UVCI))
	}
	slices.SortFunc(all, byKey)
	uvcis := func(cs []vaxpass.Certificate) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.UVCI)
		}
		return out
	}
	from, to := start.Add(20*time.Hour), start.Add(55*17*time.Hour)
	var want []vaxpass.Certificate
	for _, c := range all {
		if !c.ExpiresAt.Before(from) && c.ExpiresAt.Before(to) {
			want = append(want, c)
		}
	}
	page := func(list func(cursor string) ([]vaxpass.Certificate, string, error)) []vaxpass.Certificate {
		t.Helper()
		var out []vaxpass.Certificate
		for cursor := ""; ; {
			got, next, err := list(cursor)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, got...)
			if cursor = next; next == "" {
				return out
			}
		}
	}
	whole := page(func(cursor string) ([]vaxpass.Certificate, string, error) {
		return s.CertificatesExpiringBetween(ctx, from, to, cursor, 7)
	})
	if !slices.Equal(uvcis(whole), uvcis(want)) {
		t.Errorf("whole listing\n got %v\nwant %v", uvcis(whole), uvcis(want))
	}
	if n := s.ExpiryShards(); n != 17 {
		t.Fatalf("ExpiryShards %d, want 17 (16 and the legacy partition)", n)
	}
	var union []vaxpass.Certificate
	nonEmpty := 0
	for sh := range s.ExpiryShards() {
		got := page(func(cursor string) ([]vaxpass.Certificate, string, error) {
			return s.CertificatesExpiringInShard(ctx, sh, from, to, cursor, 3)
		})
		if !slices.IsSortedFunc(got, byKey) {
			t.Errorf("shard %d: not in expiry order: %v", sh, uvcis(got))
		}
		if len(got) > 0 {
			nonEmpty++
		}
		union = append(union, got...)
	}
	slices.SortFunc(union, byKey)
	if !slices.Equal(uvcis(union), uvcis(want)) {
		t.Errorf("partitions together\n got %v\nwant %v", uvcis(union), uvcis(want))
	}
	if nonEmpty < 8 {
		t.Errorf("only %d partitions hold certificates", nonEmpty)
	}
	if _, _, err := s.CertificatesExpiringInShard(ctx, 17, from, to, "", 3); err == nil {
		t.Error("shard 17 accepted")
	}

	// The latest expiry before a time: a legacy item's, then a sharded one's.
	last := all[len(all)-1]
	if i := slices.IndexFunc(all, func(c vaxpass.Certificate) bool { return c.UVCI == expCert(53, start).UVCI }); i < 0 {
		t.Fatal("no certificate 53")
	}
	legacy := expCert(53, start.Add(53*17*time.Hour))
	for _, tc := range []struct {
		before time.Time
		want   time.Time
	}{
		{legacy.ExpiresAt.Add(time.Second), legacy.ExpiresAt},
		{last.ExpiresAt.Add(time.Second), last.ExpiresAt},
		{legacy.ExpiresAt, start.Add(52 * 17 * time.Hour)},
	} {
		got, ok, err := s.LatestExpiryBefore(ctx, tc.before)
		if err != nil || !ok || !got.Equal(tc.want) {
			t.Errorf("LatestExpiryBefore(%v) = %v %v %v, want %v", tc.before, got, ok, err, tc.want)
		}
	}

	// The legacy item renewed: listed once, in its partition now.
	renewed := legacy
	renewed.IssuedAt, renewed.ExpiresAt = legacy.IssuedAt.Add(time.Hour), legacy.ExpiresAt.Add(time.Hour)
	if err := s.ReplaceCertificate(ctx, renewed, &legacy); err != nil {
		t.Fatal(err)
	}
	inLegacy := page(func(cursor string) ([]vaxpass.Certificate, string, error) {
		return s.CertificatesExpiringInShard(ctx, 16, time.Time{}, start.AddDate(1, 0, 0), cursor, 100)
	})
	if slices.Contains(uvcis(inLegacy), legacy.UVCI) || len(inLegacy) != 5 {
		t.Errorf("legacy partition after the renewal: %v", uvcis(inLegacy))
	}
	n := 0
	for _, c := range page(func(cursor string) ([]vaxpass.Certificate, string, error) {
		return s.CertificatesExpiringBetween(ctx, time.Time{}, start.AddDate(1, 0, 0), cursor, 10)
	}) {
		if c.UVCI == legacy.UVCI {
			n++
			if !c.ExpiresAt.Equal(renewed.ExpiresAt) || c.Version != 2 {
				t.Errorf("renewed legacy certificate listed as %+v", c)
			}
		}
	}
	if n != 1 {
		t.Errorf("renewed legacy certificate listed %d times", n)
	}
}

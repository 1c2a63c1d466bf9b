package verification_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/dcc"
	"github.com/vaxpass/vaxpass/shared/domain/vaccine"
	"github.com/vaxpass/vaxpass/shared/stage/signing"
	"github.com/vaxpass/vaxpass/shared/stage/verification"
	"github.com/vaxpass/vaxpass/shared/store/filekeys"
)

type revoked map[string]string

func (r revoked) Revoked(_ context.Context, uvci string) (string, bool, error) {
	reason, ok := r[uvci]
	return reason, ok, nil
}

func TestVerdicts(t *testing.T) {
	now := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	central, err := filekeys.EnsureCentral(t.TempDir(), now)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := vaccine.Lookup("ASTRAZENECA")
	const ci = "URN:UVCI:01:VN:AAAAAAAAAAAAAAAAAAAAAAAAAA#N"
	cert, err := dcc.Build(dcc.Person{FullName: "Đỗ Thị Hương", DOB: "1990-01-02"}, vaccine.CertifiedDose{Vaccine: v, DoseNumber: 2, SeriesDoses: 2, VaccinatedOn: "2021-09-01"}, ci)
	if err != nil {
		t.Fatal(err)
	}
	hc1, _, _, err := (&signing.HC1Sealer{Signer: central.Signer, DSC: central.DSC}).Seal(context.Background(), cert, now)
	if err != nil {
		t.Fatal(err)
	}
	at := func(t time.Time) func() time.Time { return func() time.Time { return t } }
	svc := verification.Service{Trust: central.TrustList, Now: at(now.Add(time.Hour))}
	ctx := context.Background()

	ok := svc.Verify(ctx, hc1)
	if !ok.Valid || ok.Fields == nil || ok.Fields.FullName != "Đỗ Thị Hương" || ok.Fields.VaccineProduct != "Vaxzevria" || ok.Fields.DoseNumber != 2 {
		t.Fatalf("valid verdict = %+v", ok)
	}
	cases := map[string]struct {
		svc  verification.Service
		hc1  string
		step string
	}{
		"expired":   {verification.Service{Trust: central.TrustList, Now: at(now.AddDate(1, 0, 1))}, hc1, "expired"},
		"tampered":  {svc, hc1[:40] + flip(hc1[40]) + hc1[41:], ""},
		"no prefix": {svc, strings.TrimPrefix(hc1, "HC1:"), "prefix"},
		"revoked":   {verification.Service{Trust: central.TrustList, Now: at(now), Revocations: revoked{ci: "superseded"}}, hc1, "revoked"},
	}
	for name, tc := range cases {
		got := tc.svc.Verify(ctx, tc.hc1)
		if got.Valid || (tc.step != "" && got.Step != tc.step) {
			t.Errorf("%s: verdict %+v, want invalid at step %q", name, got, tc.step)
		}
		if name == "revoked" && got.Reason != "revoked" {
			t.Errorf("revoked: reason %q", got.Reason)
		}
		if name == "tampered" && got.DCC != nil {
			t.Errorf("tampered: content shown without a verified signature")
		}
	}
}

// flip changes one Base45 character into another valid one.
func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

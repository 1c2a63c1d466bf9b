package lookup_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/dcc"
	"github.com/vaxpass/vaxpass/shared/domain/vaccine"
	"github.com/vaxpass/vaxpass/shared/hc1/hcert"
	"github.com/vaxpass/vaxpass/shared/stage/lookup"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

func TestPageOf(t *testing.T) {
	v, err := vaccine.Lookup("PFIZER")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := dcc.Build(dcc.Person{FullName: "Nguyễn Thị Ánh Tuyết", DOB: "1990-04-15"},
		vaccine.CertifiedDose{Vaccine: v, DoseNumber: 2, SeriesDoses: 2, VaccinatedOn: "2021-09-02"}, "URN:UVCI:01:VN:ABCDEFGH12#:")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, err := hcert.NewSoftwareSigner(key, []byte("kid12345"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	hc1, err := hcert.Sign(context.Background(), signer, hcert.Claims{Issuer: "VN", IssuedAt: now, ExpiresAt: now.AddDate(1, 0, 0)}, doc)
	if err != nil {
		t.Fatal(err)
	}
	p, err := lookup.PageOf(vaxpass.Certificate{UVCI: "URN:UVCI:01:VN:ABCDEFGH12#:", HC1: hc1, Fields: vaxpass.Fields{FullName: "Nguyễn Thị Ánh Tuyết"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.FamilyICAO != "NGUYEN" || p.GivenICAO != "THI<ANH<TUYET" || p.Country != dcc.Country || p.Issuer != dcc.Issuer || p.Fields.FullName != "Nguyễn Thị Ánh Tuyết" {
		t.Errorf("page %+v", p)
	}
	if _, err := lookup.PageOf(vaxpass.Certificate{UVCI: "x", HC1: "HC1:NOT-BASE45"}); err == nil {
		t.Error("a broken HC1 made a page")
	}
}

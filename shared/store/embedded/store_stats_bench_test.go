package embedded

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// BenchmarkEachDoseStat measures the dashboard's scan of the dose table per dose (the
// figure that, times 150M, is the cost of one dashboard snapshot's dose half).
func BenchmarkEachDoseStat(b *testing.B) {
	const n = 50_000
	db, s := openTestStore(b, b.TempDir())
	defer db.Close()
	ctx := context.Background()
	for i := 0; i < n; i += 1000 {
		batch := make([]vaxpass.Dose, 0, 1000)
		for j := i; j < i+1000; j++ {
			batch = append(batch, vaxpass.Dose{
				FacilityID: fmt.Sprintf("F%03d%03d", j%63, j%97),
				Record: dose.Record{SourceID: fmt.Sprintf("S%09d", j), FullName: "Nguyễn Thị Minh Khai", DOB: "1990-05-17",
					Gender: dose.Female, IDNumber: "001190012345", Phone: "0912345678", Nationality: "VN", CommuneCode: "00001",
					Vaccine: "PFIZER", DoseNumber: 2, VaccinatedOn: "2021-09-01", Lot: "FF0123"},
				Match:          match.Result{Status: match.Verified, Reasons: []string{}, Corrected: map[string]string{"full_name": "Nguyễn Thị Minh Khai"}},
				MatchedDetails: "0123456789abcdef01234567", PersonID: "001190012345",
				SignedAt: storeTestNow, ReceivedAt: storeTestNow, UpdatedAt: storeTestNow, Version: 3,
			})
		}
		if _, err := s.PutNew(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		seen := 0
		if err := s.EachDoseStat(ctx, func(string, match.Status, string) error { seen++; return nil }); err != nil || seen != n {
			b.Fatal(seen, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/dose")
}

// BenchmarkEachCertificateStat is the same per certificate (with its facilities).
func BenchmarkEachCertificateStat(b *testing.B) {
	const n = 20_000
	db, s := openTestStore(b, b.TempDir())
	defer db.Close()
	ctx := context.Background()
	hc1 := "HC1:" + strings.Repeat("NCFOXN%TS3DH3ZSUZK+.V0ETD%65NL-AH", 20)
	for i := range n {
		person := fmt.Sprintf("001190%06d", i)
		c := vaxpass.Certificate{UVCI: fmt.Sprintf("URN:UVCI:01:VN:%026d#X", i), PersonID: person, HC1: hc1, Status: vaxpass.CertIssued,
			IssuedAt: storeTestNow, ExpiresAt: storeTestNow.Add(365 * 24 * time.Hour), KID: "abcdefgh", ContentHash: "0123456789abcdef0123456789abcdef",
			Fields: vaxpass.Fields{FullName: "Nguyễn Thị Minh Khai", DateOfBirth: "1990-05-17", Nationality: "VN", Disease: "COVID-19", DosesReceived: 2,
				DateOfVaccination: "2021-09-01", DoseNumber: 2, TotalDoses: 2, Vaccine: "SARS-CoV-2 mRNA vaccine", VaccineProduct: "Comirnaty",
				Manufacturer: "BioNTech Manufacturing GmbH", CertificateID: "URN:UVCI:01:VN:X"}}
		if err := s.ReplaceCertificate(ctx, c, nil); err != nil {
			b.Fatal(err)
		}
		if err := s.PutFacilitySignature(ctx, vaxpass.FacilitySignature{PersonID: person, FacilityID: "F001001", SignedAt: storeTestNow}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		seen := 0
		err := s.EachCertificateStat(ctx, func(string, string, time.Time, time.Time, []string) error { seen++; return nil })
		if err != nil || seen != n {
			b.Fatal(seen, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/cert")
}

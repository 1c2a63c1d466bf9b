package storetest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// newCert is a first certificate of person issued at at, valid a year.
func newCert(person, uvci string, at time.Time) vaxpass.Certificate {
	return vaxpass.Certificate{
		UVCI: uvci, PersonID: person, HC1: "HC1:NCF" + strings.ReplaceAll(uvci, ":", ""),
		Status: vaxpass.CertIssued, IssuedAt: at, ExpiresAt: at.AddDate(1, 0, 0),
		KID: "3PL7wpyhT2M=", ContentHash: "content-" + uvci,
		Fields: vaxpass.Fields{
			FullName: "NGUYEN VAN AN", DateOfBirth: "1990-01-02", Nationality: "VN", Disease: "COVID-19",
			DosesReceived: 2, DateOfVaccination: "2021-08-29", DoseNumber: 2, TotalDoses: 2,
			Vaccine: "SARS-CoV-2 mRNA vaccine", VaccineProduct: "Comirnaty", Manufacturer: "Biontech Manufacturing GmbH",
			CertificateID: uvci,
		},
		NameKey: "NGUYEN VAN AN", DOB: "1990-01-02", Version: 1,
	}
}

// successor is a new certificate replacing prev.
func successor(prev vaxpass.Certificate, uvci string, at time.Time) vaxpass.Certificate {
	c := newCert(prev.PersonID, uvci, at)
	c.Replaces = prev.UVCI
	return c
}

// superseded is prev as stored after next replaced it.
func superseded(prev, next vaxpass.Certificate) vaxpass.Certificate {
	prev.Status = vaxpass.CertRevoked
	prev.RevokedReason = "superseded"
	prev.RevokedAt = next.IssuedAt
	prev.Version++
	return prev
}

func checkActive(t *testing.T, s Store, person string, want *vaxpass.Certificate) {
	t.Helper()
	got, err := s.ActiveCertificate(ctxOf(t), person)
	if want == nil {
		wantErr(t, "ActiveCertificate of "+person, err, vaxpass.ErrNotFound)
		return
	}
	if err != nil {
		t.Fatalf("ActiveCertificate of %s: %v", person, err)
	}
	sameJSON(t, "ActiveCertificate of "+person, got, *want)
}

func checkCert(t *testing.T, s Store, want vaxpass.Certificate) {
	t.Helper()
	for _, id := range []string{want.UVCI, strings.ToLower(want.UVCI)} {
		got, err := s.CertificateByUVCI(ctxOf(t), id)
		if err != nil {
			t.Fatalf("CertificateByUVCI %s: %v", id, err)
		}
		sameJSON(t, "CertificateByUVCI "+id, got, want)
	}
}

func mustReplace(t *testing.T, s Store, next vaxpass.Certificate, prev *vaxpass.Certificate) {
	t.Helper()
	if err := s.ReplaceCertificate(ctxOf(t), next, prev); err != nil {
		t.Fatalf("ReplaceCertificate %s: %v", next.UVCI, err)
	}
}

func testFacilitySignatures(t *testing.T, s Store) {
	ctx := ctxOf(t)
	sig := func(person, fac string, at time.Time) vaxpass.FacilitySignature {
		return vaxpass.FacilitySignature{PersonID: person, FacilityID: fac,
			Payload: []byte("payload " + fac + at.Format(time.RFC3339)), Signature: []byte{1, 2, 3, byte(at.Hour())}, SignedAt: at}
	}
	put := func(g vaxpass.FacilitySignature) {
		t.Helper()
		if err := s.PutFacilitySignature(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	check := func(person string, want ...vaxpass.FacilitySignature) {
		t.Helper()
		got, err := s.FacilitySignatures(ctx, person)
		if err != nil {
			t.Fatal(err)
		}
		sort.Slice(got, func(i, j int) bool { return got[i].FacilityID < got[j].FacilityID })
		if len(got) == 0 && len(want) == 0 {
			return
		}
		sameJSON(t, "FacilitySignatures of "+person, got, want)
	}
	t1, t2, t3 := base.Add(time.Hour), base.Add(2*time.Hour), base.Add(3*time.Hour)
	put(sig("P1", "f1", t2))
	put(sig("P1", "f1", t1)) // older: a late re-delivery replaces nothing
	put(sig("P1", "f2", t1))
	put(sig("P10", "f1", t3))
	check("P1", sig("P1", "f1", t2), sig("P1", "f2", t1))
	put(sig("P1", "f1", t3))
	put(sig("P1", "f1", t3)) // the same again: no-op
	check("P1", sig("P1", "f1", t3), sig("P1", "f2", t1))
	check("P10", sig("P10", "f1", t3))
	check("nobody")
}

func testReplaceFirst(t *testing.T, s Store) {
	ctx := ctxOf(t)
	checkActive(t, s, "P1", nil)
	c1 := newCert("P1", "URN:UVCI:01:VN:AAA111#B", base)
	mustReplace(t, s, c1, nil)
	checkActive(t, s, "P1", &c1)
	checkCert(t, s, c1)

	other := newCert("P1", "URN:UVCI:01:VN:BBB222#C", base.Add(time.Hour))
	wantErr(t, "a second first certificate", s.ReplaceCertificate(ctx, other, nil), vaxpass.ErrConflict)
	checkActive(t, s, "P1", &c1)
	_, err := s.CertificateByUVCI(ctx, other.UVCI)
	wantErr(t, "CertificateByUVCI of a refused certificate", err, vaxpass.ErrNotFound)

	taken := newCert("P2", strings.ToLower(c1.UVCI), base)
	wantErr(t, "a UVCI already taken (other case)", s.ReplaceCertificate(ctx, taken, nil), vaxpass.ErrConflict)
	checkActive(t, s, "P2", nil)
	checkCert(t, s, c1)

	_, err = s.CertificateByUVCI(ctx, "URN:UVCI:01:VN:NOPE#X")
	wantErr(t, "CertificateByUVCI of an unknown UVCI", err, vaxpass.ErrNotFound)
	checkActive(t, s, "P", nil) // a prefix of a person ID is another person
}

func testReplaceSupersede(t *testing.T, s Store) {
	ctx := ctxOf(t)
	c1 := newCert("P1", "URN:UVCI:01:VN:AAA111#B", base)
	mustReplace(t, s, c1, nil)
	c2 := successor(c1, "URN:UVCI:01:VN:CCC333#D", base.Add(24*time.Hour))
	mustReplace(t, s, c2, &c1)
	r1 := superseded(c1, c2)
	checkActive(t, s, "P1", &c2)
	checkCert(t, s, r1)
	checkCert(t, s, c2)

	c3 := successor(c2, "URN:UVCI:01:VN:DDD444#E", base.Add(48*time.Hour))
	wantErr(t, "replacing a certificate no longer active", s.ReplaceCertificate(ctx, c3, &c1), vaxpass.ErrConflict)
	wantErr(t, "replacing with a stale prev (revoked version)", s.ReplaceCertificate(ctx, c3, &r1), vaxpass.ErrConflict)
	staleVersion := c2
	staleVersion.Version = 9
	wantErr(t, "replacing a prev of another version", s.ReplaceCertificate(ctx, c3, &staleVersion), vaxpass.ErrConflict)
	wantErr(t, "a first certificate while one is active", s.ReplaceCertificate(ctx, c3, nil), vaxpass.ErrConflict)
	reuse := successor(c2, c1.UVCI, base.Add(48*time.Hour))
	wantErr(t, "a successor with a taken UVCI", s.ReplaceCertificate(ctx, reuse, &c2), vaxpass.ErrConflict)
	checkActive(t, s, "P1", &c2) // nothing of the refused replacements was written
	checkCert(t, s, c2)
	checkCert(t, s, r1)
	_, err := s.CertificateByUVCI(ctx, c3.UVCI)
	wantErr(t, "CertificateByUVCI of a refused certificate", err, vaxpass.ErrNotFound)

	mustReplace(t, s, c3, &c2)
	checkActive(t, s, "P1", &c3)
	checkCert(t, s, superseded(c2, c3))
	checkCert(t, s, r1)
}

func testReplaceRenewal(t *testing.T, s Store) {
	ctx := ctxOf(t)
	c1 := newCert("P1", "URN:UVCI:01:VN:AAA111#B", base)
	mustReplace(t, s, c1, nil)
	renewed := c1
	renewed.IssuedAt = base.AddDate(0, 11, 0)
	renewed.ExpiresAt = renewed.IssuedAt.AddDate(1, 0, 0)
	renewed.HC1 = "HC1:RENEWED"
	mustReplace(t, s, renewed, &c1)
	want := renewed
	want.Version = c1.Version + 1
	checkActive(t, s, "P1", &want)
	checkCert(t, s, want)
	wantErr(t, "renewing from a stale read", s.ReplaceCertificate(ctx, renewed, &c1), vaxpass.ErrConflict)

	got, _, err := s.CertificatesExpiringBefore(ctx, c1.ExpiresAt.Add(time.Second), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("the renewed certificate is still listed under its old expiry: %d listed", len(got))
	}
	got, _, err = s.CertificatesExpiringBefore(ctx, want.ExpiresAt.Add(time.Second), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("expiring before the new expiry: %d listed, want 1", len(got))
	}
	sameJSON(t, "the renewed certificate as listed", got[0], want)
}

func testReplaceInvalid(t *testing.T, s Store) {
	ctx := ctxOf(t)
	c1 := newCert("P1", "URN:UVCI:01:VN:AAA111#B", base)
	revoked := c1
	revoked.Status = vaxpass.CertRevoked
	wantErr(t, "next not issued", s.ReplaceCertificate(ctx, revoked, nil), vaxpass.ErrInvalid)
	noID := c1
	noID.UVCI = ""
	wantErr(t, "next without UVCI", s.ReplaceCertificate(ctx, noID, nil), vaxpass.ErrInvalid)
	noPerson := c1
	noPerson.PersonID = ""
	wantErr(t, "next without person", s.ReplaceCertificate(ctx, noPerson, nil), vaxpass.ErrInvalid)
	mustReplace(t, s, c1, nil)
	elsewhere := newCert("P2", "URN:UVCI:01:VN:CCC333#D", base)
	wantErr(t, "prev of another person", s.ReplaceCertificate(ctx, elsewhere, &c1), vaxpass.ErrInvalid)
	checkActive(t, s, "P1", &c1)
	checkActive(t, s, "P2", nil)
}

func testReplaceConcurrent(t *testing.T, s Store) {
	const workers = 16
	errs := make([]error, workers)
	certs := make([]vaxpass.Certificate, workers)
	var wg sync.WaitGroup
	for w := range workers {
		certs[w] = newCert("P1", fmt.Sprintf("URN:UVCI:01:VN:W%02dXYZ#K", w), base)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[w] = s.ReplaceCertificate(context.Background(), certs[w], nil)
		}()
	}
	wg.Wait()
	winner := -1
	for w, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("workers %d and %d both issued a first certificate", winner, w)
		case err == nil:
			winner = w
		default:
			wantErr(t, fmt.Sprintf("worker %d", w), err, vaxpass.ErrConflict)
		}
	}
	if winner < 0 {
		t.Fatal("no worker issued the certificate")
	}
	checkActive(t, s, "P1", &certs[winner])
}

func testRevokeCertificate(t *testing.T, s Store) {
	ctx := ctxOf(t)
	c1 := newCert("P1", "URN:UVCI:01:VN:AAA111#B", base)
	mustReplace(t, s, c1, nil)
	at := base.Add(5 * time.Hour)
	if err := s.RevokeCertificate(ctx, c1, "issued in error", at); err != nil {
		t.Fatal(err)
	}
	r1 := c1
	r1.Status, r1.RevokedReason, r1.RevokedAt, r1.Version = vaxpass.CertRevoked, "issued in error", at, 2
	checkCert(t, s, r1)
	checkActive(t, s, "P1", nil)
	wantErr(t, "revoking from a stale read", s.RevokeCertificate(ctx, c1, "again", at), vaxpass.ErrConflict)
	wantErr(t, "revoking a revoked certificate", s.RevokeCertificate(ctx, r1, "again", at), vaxpass.ErrConflict)
	wantErr(t, "revoking an unknown certificate", s.RevokeCertificate(ctx, newCert("P1", "URN:UVCI:01:VN:NOPE#X", base), "x", at), vaxpass.ErrNotFound)
	checkCert(t, s, r1)

	// With no active certificate left, the next one is a first certificate again.
	c2 := successor(r1, "URN:UVCI:01:VN:CCC333#D", base.Add(6*time.Hour))
	wantErr(t, "replacing a revoked certificate", s.ReplaceCertificate(ctx, c2, &r1), vaxpass.ErrConflict)
	mustReplace(t, s, c2, nil)
	checkActive(t, s, "P1", &c2)
	got, _, err := s.CertificatesExpiringBefore(ctx, base.AddDate(2, 0, 0), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "issued certificates after a revocation", got, []vaxpass.Certificate{c2})
}

// certWorld issues, supersedes, renews and revokes a set of certificates and returns
// them as they must be stored, by upper-case UVCI.
func certWorld(t *testing.T, s Store) map[string]vaxpass.Certificate {
	ctx := ctxOf(t)
	world := map[string]vaxpass.Certificate{}
	active := map[string]vaxpass.Certificate{}
	for i := 1; i <= 9; i++ {
		person := fmt.Sprintf("P%02d", i)
		// Three people share each expiry; UVCIs decrease with i so that the tie order
		// (by UVCI) differs from the insertion order. Lower case on one: keys ignore case.
		uvci := fmt.Sprintf("URN:UVCI:01:VN:%02dQRS#T", 20-i)
		if i == 5 {
			uvci = strings.ToLower(uvci)
		}
		c := newCert(person, uvci, base.AddDate(0, 0, i%3))
		mustReplace(t, s, c, nil)
		world[strings.ToUpper(uvci)], active[person] = c, c
	}
	// P02's certificate is superseded by one expiring later.
	prev := active["P02"]
	next := successor(prev, "URN:UVCI:01:VN:50NEW#A", base.AddDate(0, 0, 10))
	mustReplace(t, s, next, &prev)
	world[strings.ToUpper(prev.UVCI)], world[next.UVCI] = superseded(prev, next), next
	// P03's is revoked.
	prev = active["P03"]
	if err := s.RevokeCertificate(ctx, prev, "ops", base.AddDate(0, 0, 5)); err != nil {
		t.Fatal(err)
	}
	prev.Status, prev.RevokedReason, prev.RevokedAt, prev.Version = vaxpass.CertRevoked, "ops", base.AddDate(0, 0, 5), prev.Version+1
	world[strings.ToUpper(prev.UVCI)] = prev
	// P04's is renewed.
	prev = active["P04"]
	renewed := prev
	renewed.IssuedAt, renewed.ExpiresAt, renewed.HC1 = base.AddDate(0, 11, 0), base.AddDate(1, 11, 0), "HC1:RENEWED"
	mustReplace(t, s, renewed, &prev)
	renewed.Version = prev.Version + 1
	world[strings.ToUpper(prev.UVCI)] = renewed
	return world
}

func testExpiring(t *testing.T, s Store) {
	ctx := ctxOf(t)
	world := certWorld(t, s)
	for _, before := range []time.Time{base, base.AddDate(1, 0, 1), base.AddDate(1, 0, 2).Add(time.Nanosecond), base.AddDate(1, 1, 0), base.AddDate(3, 0, 0)} {
		var want []vaxpass.Certificate
		for _, c := range world {
			if c.Status == vaxpass.CertIssued && c.ExpiresAt.Before(before) {
				want = append(want, c)
			}
		}
		sort.Slice(want, func(i, j int) bool {
			if !want[i].ExpiresAt.Equal(want[j].ExpiresAt) {
				return want[i].ExpiresAt.Before(want[j].ExpiresAt)
			}
			return strings.ToUpper(want[i].UVCI) < strings.ToUpper(want[j].UVCI)
		})
		for _, limit := range []int{1, 2, 4, 100} {
			var got []vaxpass.Certificate
			cursor := ""
			for page := 0; ; page++ {
				if page > len(world)+1 {
					t.Fatalf("before %s, limit %d: paging does not end", before, limit)
				}
				certs, next, err := s.CertificatesExpiringBefore(ctx, before, cursor, limit)
				if err != nil {
					t.Fatal(err)
				}
				if len(certs) > limit || next != "" && len(certs) == 0 {
					t.Fatalf("before %s, limit %d: page of %d with next %q", before, limit, len(certs), next)
				}
				got = append(got, certs...)
				if next == "" {
					break
				}
				cursor = next
			}
			if len(got) == 0 && len(want) == 0 {
				continue
			}
			sameJSON(t, fmt.Sprintf("expiring before %s, pages of %d", before.Format(time.RFC3339Nano), limit), got, want)
		}
	}
	if _, _, err := s.CertificatesExpiringBefore(ctx, base, "", 0); err == nil {
		t.Error("limit 0 accepted")
	}
	if _, _, err := s.CertificatesExpiringBefore(ctx, base.AddDate(5, 0, 0), "!not a cursor!", 10); err == nil {
		t.Error("a cursor the store never gave was accepted")
	}
}

// testExpiringBetween: ranges of expiries (renewal's slices) page through exactly the
// issued certificates of the range, and adjacent ranges cover the whole index once.
func testExpiringBetween(t *testing.T, s Store) {
	ctx := ctxOf(t)
	world := certWorld(t, s)
	var issued []vaxpass.Certificate
	for _, c := range world {
		if c.Status == vaxpass.CertIssued {
			issued = append(issued, c)
		}
	}
	sort.Slice(issued, func(i, j int) bool {
		if !issued[i].ExpiresAt.Equal(issued[j].ExpiresAt) {
			return issued[i].ExpiresAt.Before(issued[j].ExpiresAt)
		}
		return strings.ToUpper(issued[i].UVCI) < strings.ToUpper(issued[j].UVCI)
	})
	if len(issued) < 3 {
		t.Fatalf("the world holds %d issued certificates", len(issued))
	}
	end := base.AddDate(5, 0, 0)
	// Bounds: before everything, each expiry itself (inclusive from), a nanosecond after
	// one, across months, and after everything.
	bounds := []time.Time{{}, base, issued[1].ExpiresAt, issued[1].ExpiresAt.Add(time.Nanosecond), base.AddDate(1, 1, 0), end}
	for i := 0; i+1 < len(bounds); i++ {
		for j := i + 1; j < len(bounds); j++ {
			from, to := bounds[i], bounds[j]
			var want []vaxpass.Certificate
			for _, c := range issued {
				if !c.ExpiresAt.Before(from) && c.ExpiresAt.Before(to) {
					want = append(want, c)
				}
			}
			for _, limit := range []int{1, 3, 100} {
				var got []vaxpass.Certificate
				cursor := ""
				for page := 0; ; page++ {
					if page > len(world)+1 {
						t.Fatalf("[%s, %s), limit %d: paging does not end", from, to, limit)
					}
					certs, next, err := s.CertificatesExpiringBetween(ctx, from, to, cursor, limit)
					if err != nil {
						t.Fatal(err)
					}
					if len(certs) > limit || next != "" && len(certs) == 0 {
						t.Fatalf("[%s, %s), limit %d: page of %d with next %q", from, to, limit, len(certs), next)
					}
					got = append(got, certs...)
					if next == "" {
						break
					}
					cursor = next
				}
				if len(got) == 0 && len(want) == 0 {
					continue
				}
				sameJSON(t, fmt.Sprintf("expiring in [%s, %s), pages of %d", from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano), limit), got, want)
			}
		}
	}
	for _, before := range []time.Time{base, issued[1].ExpiresAt, issued[1].ExpiresAt.Add(time.Nanosecond), end} {
		var want time.Time
		for _, c := range issued {
			if c.ExpiresAt.Before(before) {
				want = c.ExpiresAt
			}
		}
		got, found, err := s.LatestExpiryBefore(ctx, before)
		if err != nil {
			t.Fatal(err)
		}
		if found != !want.IsZero() || !got.Equal(want) {
			t.Errorf("LatestExpiryBefore(%s) = %s %v, want %s", before.Format(time.RFC3339Nano), got, found, want)
		}
	}
}

func testListCertificates(t *testing.T, s Store) {
	ctx := ctxOf(t)
	world := certWorld(t, s)
	var keys []string
	for k := range world {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, limit := range []int{1, 3, 100} {
		var got []string
		cursor := ""
		for page := 0; ; page++ {
			if page > len(world)+1 {
				t.Fatalf("limit %d: paging does not end", limit)
			}
			certs, next, err := s.ListCertificates(ctx, cursor, limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(certs) > limit {
				t.Fatalf("limit %d: page of %d", limit, len(certs))
			}
			for _, c := range certs {
				k := strings.ToUpper(c.UVCI)
				got = append(got, k)
				sameJSON(t, "ListCertificates "+k, c, world[k])
			}
			if next == "" {
				break
			}
			cursor = next
		}
		// Every certificate exactly once; the order is the adapter's (a scan).
		if got = sortedCopy(got); !equalStrings(got, keys) {
			t.Errorf("limit %d: listed %v, want %v", limit, got, keys)
		}
	}

	for _, now := range []time.Time{base, base.AddDate(1, 0, 1), base.AddDate(1, 0, 2), base.AddDate(5, 0, 0)} {
		want := map[string]int{vaxpass.CertIssued: 0, vaxpass.CertExpired: 0, vaxpass.CertRevoked: 0}
		for _, c := range world {
			want[c.StatusAt(now)]++
		}
		got, err := s.CertificateCounts(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		sameJSON(t, "CertificateCounts at "+now.Format(time.RFC3339), got, want)
	}
}

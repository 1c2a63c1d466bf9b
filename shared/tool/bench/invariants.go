package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/domain/vaccine"
	"github.com/vaxpass/vaxpass/shared/tool/synth"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

// Invariants is the end state of a run, read back from the store: every accepted record
// matched, every eligible person exactly one active certificate, nothing left in the
// queue or the feed.
type Invariants struct {
	Doses     int                  `json:"doses"`
	ByStatus  map[match.Status]int `json:"doses_by_status"`
	Unmatched int                  `json:"unmatched"`
	// TruthMismatches counts doses whose status differs from the generator's ground truth
	// (matcher accuracy; reported, not an invariant of the pipeline).
	TruthMismatches int `json:"truth_mismatches"`
	// EligiblePeople have verified doses that make a complete course; EligibleUnsigned
	// counts those with a verified dose no facility signed.
	EligiblePeople   int `json:"eligible_people"`
	EligibleUnsigned int `json:"eligible_unsigned"`
	// ActiveCertificates in status issued; CertificatesIssued every certificate ever
	// sealed (active and superseded).
	ActiveCertificates     int `json:"active_certificates"`
	CertificatesIssued     int `json:"certificates_issued"`
	Superseded             int `json:"superseded"`
	MissingCertificates    int `json:"missing_certificates"`
	UnexpectedCertificates int `json:"unexpected_certificates"`
	DuplicateCertificates  int `json:"duplicate_certificates"`
	QueueLeft              int `json:"queue_left"`
	QueueDead              int `json:"queue_dead"`
	FeedLag                int `json:"feed_lag"`
	FeedDead               int `json:"feed_dead"`
	// Violations lists what broke, empty when the run is sound.
	Violations []string `json:"violations"`
}

// scanPage is ScanDoses' page size (its maximum).
const scanPage = 10_000

func (r *runner) checkInvariants(ctx context.Context) (Invariants, error) {
	inv := Invariants{ByStatus: map[match.Status]int{}, Violations: []string{}}
	truth, err := r.readTruth()
	if err != nil {
		return inv, err
	}
	courses := map[string][]vaccine.Dose{}
	unsigned := map[string]bool{}
	after := vaxpass.DoseKey{}
	for {
		page, done, err := r.sys.Store.ScanDoses(ctx, nil, nil, after, scanPage)
		if err != nil {
			return inv, fmt.Errorf("scan doses: %w", err)
		}
		for i := range page {
			d := &page[i]
			inv.Doses++
			inv.ByStatus[d.Match.Status]++
			if d.NeedsMatch() {
				inv.Unmatched++
				continue
			}
			if want, ok := truth.status(d.SourceID); !ok || want != d.Match.Status {
				inv.TruthMismatches++
			}
			if d.Match.Status == match.Verified && d.PersonID != "" {
				courses[d.PersonID] = append(courses[d.PersonID], vaccine.Dose{Vaccine: vaccine.Code(d.Vaccine), DoseNumber: d.DoseNumber, VaccinatedOn: d.VaccinatedOn})
				if d.SignedAt.IsZero() {
					unsigned[d.PersonID] = true
				}
			}
		}
		if len(page) > 0 {
			after = page[len(page)-1].Key()
		}
		if done || len(page) == 0 {
			break
		}
	}
	eligible := make(map[string]bool, len(courses))
	for person, doses := range courses {
		if a, err := vaccine.Assess(doses); err == nil && a.Eligible {
			eligible[person] = true
			if unsigned[person] {
				inv.EligibleUnsigned++
			}
		}
	}
	courses = nil
	inv.EligiblePeople = len(eligible)

	active := make(map[string]bool, len(eligible))
	cursor := ""
	for {
		certs, next, err := r.sys.Store.ListCertificates(ctx, cursor, scanPage)
		if err != nil {
			return inv, fmt.Errorf("list certificates: %w", err)
		}
		for _, c := range certs {
			inv.CertificatesIssued++
			switch c.Status {
			case vaxpass.CertIssued:
				if active[c.PersonID] {
					inv.DuplicateCertificates++
				}
				active[c.PersonID] = true
				if !eligible[c.PersonID] {
					inv.UnexpectedCertificates++
				}
			case vaxpass.CertRevoked:
				inv.Superseded++
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	inv.ActiveCertificates = len(active)
	for person := range eligible {
		if !active[person] {
			inv.MissingCertificates++
		}
	}

	qc, err := r.sys.Queue.Counts(ctx)
	if err != nil {
		return inv, err
	}
	inv.QueueLeft, inv.QueueDead = qc.Visible+qc.InFlight+qc.Delayed, qc.Dead
	fs, err := r.sys.Store.DoseFeed().Stats(ctx)
	if err != nil {
		return inv, err
	}
	if cs, ok := fs.Consumers[local.MatcherConsumer]; ok {
		inv.FeedLag, inv.FeedDead = int(cs.Lag), cs.Dead
	}

	check := func(bad bool, format string, args ...any) {
		if bad {
			inv.Violations = append(inv.Violations, fmt.Sprintf(format, args...))
		}
	}
	check(inv.Doses != r.res.Accepted, "%d doses stored, %d accepted", inv.Doses, r.res.Accepted)
	check(inv.Unmatched > 0, "%d accepted records never matched", inv.Unmatched)
	check(inv.EligibleUnsigned > 0, "%d eligible people with a dose no facility signed", inv.EligibleUnsigned)
	check(inv.MissingCertificates > 0, "%d eligible people without a certificate", inv.MissingCertificates)
	check(inv.UnexpectedCertificates > 0, "%d certificates for people who are not eligible", inv.UnexpectedCertificates)
	check(inv.DuplicateCertificates > 0, "%d people with two active certificates", inv.DuplicateCertificates)
	check(inv.QueueLeft+inv.QueueDead > 0, "central queue not empty: %d left, %d dead", inv.QueueLeft, inv.QueueDead)
	check(inv.FeedLag+inv.FeedDead > 0, "change feed not consumed: lag %d, %d dead", inv.FeedLag, inv.FeedDead)
	return inv, nil
}

// truthTable holds the generator's expected status of every record, indexed by the
// record's sequence number (the digits after the '-' of its source_id): a byte per record.
type truthTable struct {
	statuses []match.Status
	byRecord []uint8
}

func (t *truthTable) status(sourceID string) (match.Status, bool) {
	i := strings.LastIndexByte(sourceID, '-')
	if i < 0 {
		return "", false
	}
	seq, err := strconv.Atoi(sourceID[i+1:])
	if err != nil || seq < 1 || seq > len(t.byRecord) || t.byRecord[seq-1] == 0 {
		return "", false
	}
	return t.statuses[t.byRecord[seq-1]-1], true
}

func (r *runner) readTruth() (*truthTable, error) {
	f, err := os.Open(filepath.Join(r.popDir, synth.TruthFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t := &truthTable{byRecord: make([]uint8, r.res.Records)}
	index := map[match.Status]uint8{}
	err = synth.ReadTruth(f, func(tr synth.Truth) error {
		i := strings.LastIndexByte(tr.SourceID, '-')
		seq, err := strconv.Atoi(tr.SourceID[i+1:])
		if i < 0 || err != nil || seq < 1 || seq > len(t.byRecord) {
			return fmt.Errorf("truth: unexpected source_id %q", tr.SourceID)
		}
		code, ok := index[tr.Status]
		if !ok {
			t.statuses = append(t.statuses, tr.Status)
			code = uint8(len(t.statuses))
			index[tr.Status] = code
		}
		t.byRecord[seq-1] = code
		return nil
	})
	return t, err
}

package revocation

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/vaxpass/vaxpass/shared/domain/uvci"
	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Reasons a certificate is listed for. Ops revocations carry the operator's reason in
// the store and the audit trail; verifiers only ever see "revoked".
const (
	// ReasonSuperseded: a correction issued a new certificate (new UVCI) in its place.
	ReasonSuperseded = "superseded"
	// ReasonRevoked is what a verifier is told for any listed certificate.
	ReasonRevoked = "revoked"
)

// MaxReason bounds an ops revocation reason (characters).
const MaxReason = 200

// Entry is one listed certificate, as stored (not as published: the published list has
// the hashes only).
type Entry struct {
	UCI            Hash      `json:"uci"`
	CountryCodeUCI Hash      `json:"country_code_uci"`
	UVCI           string    `json:"uvci"`
	Reason         string    `json:"reason"`
	RevokedAt      time.Time `json:"revoked_at"`
	Actor          string    `json:"actor"`
}

// Store keeps the revocation list. Entries are only ever added.
type Store interface {
	// AddRevocation stores e under e.UCI unless that UCI is listed already, and appends
	// note (when not nil) to the audit trail in the same transaction. added is false when
	// the UCI was listed already; then nothing is written.
	AddRevocation(ctx context.Context, e Entry, note *audit.Entry) (added bool, err error)
	// RevocationByUCI returns the entry of a UCI hash.
	RevocationByUCI(ctx context.Context, h Hash) (e Entry, found bool, err error)
	// Revocations lists entries in UCI order after after (nil: from the start), at most limit.
	Revocations(ctx context.Context, after *Hash, limit int) ([]Entry, error)
	// RevocationCount is the number of entries.
	RevocationCount(ctx context.Context) (int, error)
}

// Certs is the certificate store as revocation needs it.
type Certs interface {
	// CertificateByUVCI returns the certificate (any status), UVCI compared case-insensitively.
	CertificateByUVCI(ctx context.Context, uvci string) (vaxpass.Certificate, error)
	// RevokeCertificate stores c revoked, conditional on it being issued at c.Version
	// (vaxpass.ErrConflict otherwise).
	RevokeCertificate(ctx context.Context, c vaxpass.Certificate, reason string, at time.Time) error
}

// Service revokes certificates and keeps the list.
type Service struct {
	List  Store
	Certs Certs
	// Issuer is the CWT iss of our certificates ("VN"), for the COUNTRYCODEUCI hash.
	Issuer string
	Now    func() time.Time
}

// Errors of the service.
var (
	// ErrInvalidReason: an empty, over-long or control-character reason.
	ErrInvalidReason = errors.New("invalid revocation reason")
)

// Outcomes of Revoke.
const (
	Revoked        = "revoked"         // listed now (and the certificate stored revoked)
	AlreadyRevoked = "already_revoked" // it was listed before: nothing changed
)

// Result is what Revoke did.
type Result struct {
	UVCI      string    `json:"uvci"`
	Outcome   string    `json:"outcome"`
	Reason    string    `json:"reason"`
	RevokedAt time.Time `json:"revoked_at"`
}

// NewEntry returns the entry of a certificate identifier.
func (s *Service) NewEntry(ci, reason, actor string, at time.Time) Entry {
	return Entry{UCI: UCI(ci), CountryCodeUCI: CountryCodeUCI(s.Issuer, ci), UVCI: ci, Reason: reason, RevokedAt: at.UTC(), Actor: actor}
}

// CheckReason validates an ops revocation reason.
func CheckReason(reason string) error {
	r := strings.TrimSpace(reason)
	switch {
	case r == "":
		return fmt.Errorf("%w: %w: reason is required", vaxpass.ErrInvalid, ErrInvalidReason)
	case !utf8.ValidString(r):
		return fmt.Errorf("%w: %w: reason is not UTF-8", vaxpass.ErrInvalid, ErrInvalidReason)
	case utf8.RuneCountInString(r) > MaxReason:
		return fmt.Errorf("%w: %w: reason is longer than %d characters", vaxpass.ErrInvalid, ErrInvalidReason, MaxReason)
	}
	for _, c := range r {
		if unicode.IsControl(c) {
			return fmt.Errorf("%w: %w: reason holds a control character", vaxpass.ErrInvalid, ErrInvalidReason)
		}
	}
	return nil
}

// CheckUVCI validates a UVCI given by an operator (its form, not whether it exists).
func CheckUVCI(ci string) error {
	if _, err := uvci.Parse(ci); err != nil {
		return fmt.Errorf("%w: uvci: %w", vaxpass.ErrInvalid, err)
	}
	return nil
}

// Revoke revokes a certificate by UVCI on an operator's word: the list entry and its
// audit entry are written first (together), then the certificate is stored revoked. A
// crash in between leaves the certificate listed -- verifiers already reject it -- and
// running Revoke again completes the store change. Revoking a listed certificate again
// changes nothing (AlreadyRevoked). An unknown UVCI is vaxpass.ErrNotFound.
func (s *Service) Revoke(ctx context.Context, actor, ci, reason string) (Result, error) {
	ci = strings.TrimSpace(ci)
	reason = strings.TrimSpace(reason)
	if err := errors.Join(CheckUVCI(ci), CheckReason(reason)); err != nil {
		return Result{}, err
	}
	cert, err := s.Certs.CertificateByUVCI(ctx, ci)
	if err != nil {
		return Result{}, fmt.Errorf("revoke: read certificate: %w", err)
	}
	now := s.Now().UTC()
	e := s.NewEntry(cert.UVCI, reason, actor, now)
	note := &audit.Entry{At: now, Actor: actor, Action: audit.ActionRevocation, Reason: reason, UVCIs: []string{cert.UVCI}}
	added, err := s.List.AddRevocation(ctx, e, note)
	if err != nil {
		return Result{}, fmt.Errorf("revoke: list: %w", err)
	}
	res := Result{UVCI: cert.UVCI, Outcome: Revoked, Reason: reason, RevokedAt: now}
	if !added {
		prev, found, err := s.List.RevocationByUCI(ctx, e.UCI)
		if err != nil {
			return Result{}, fmt.Errorf("revoke: read list: %w", err)
		}
		if found {
			res.Outcome, res.Reason, res.RevokedAt = AlreadyRevoked, prev.Reason, prev.RevokedAt
		}
	}
	for attempt := 0; cert.Status == vaxpass.CertIssued; attempt++ {
		err := s.Certs.RevokeCertificate(ctx, cert, res.Reason, res.RevokedAt)
		if err == nil {
			// Listed before but still issued in the store: a crash interrupted an
			// earlier call, which this one completed.
			res.Outcome = Revoked
			break
		}
		if !errors.Is(err, vaxpass.ErrConflict) || attempt == 5 {
			return Result{}, fmt.Errorf("revoke: store: %w", err)
		}
		// A renewal or another writer changed it meanwhile: read it again.
		if cert, err = s.Certs.CertificateByUVCI(ctx, ci); err != nil {
			return Result{}, fmt.Errorf("revoke: read certificate: %w", err)
		}
	}
	return res, nil
}

// Superseded lists prev, replaced by next after a correction changed what the certificate
// says (a new UVCI), with reason "superseded"; the audit entry names both UVCIs. It is
// idempotent. Call it BEFORE storing next in prev's place: if the process dies between
// the two, the retried issuance supersedes prev again (its content is stale either way).
func (s *Service) Superseded(ctx context.Context, actor string, prev, next vaxpass.Certificate) error {
	now := s.Now().UTC()
	e := s.NewEntry(prev.UVCI, ReasonSuperseded, actor, now)
	note := &audit.Entry{At: now, Actor: actor, Action: audit.ActionRevocation, Reason: ReasonSuperseded,
		UVCIs: []string{prev.UVCI, next.UVCI}, Params: map[string]string{"replaced_by": next.UVCI}}
	if _, err := s.List.AddRevocation(ctx, e, note); err != nil {
		return fmt.Errorf("list superseded certificate: %w", err)
	}
	return nil
}

// Lookup implements verification.Revocations over the stored list: it hashes the UVCI and
// looks the hash up, so the server's verifier and an offline one reading the published
// list agree.
type Lookup struct {
	List interface {
		RevocationByUCI(ctx context.Context, h Hash) (Entry, bool, error)
	}
}

// Revoked implements verification.Revocations.
func (l Lookup) Revoked(ctx context.Context, ci string) (string, bool, error) {
	if ci == "" {
		return "", false, nil
	}
	_, found, err := l.List.RevocationByUCI(ctx, UCI(ci))
	if err != nil || !found {
		return "", false, err
	}
	return ReasonRevoked, true, nil
}

// Publisher renders the published list from the store, rebuilding it only when the
// number of entries changed (entries are only ever added).
type Publisher struct {
	List   Store
	Issuer string
	Now    func() time.Time

	mu    sync.Mutex
	count int
	body  []byte
	built bool
}

// PageSize is how many entries one read of the store returns while publishing.
const PageSize = 10_000

// Current returns the list's JSON and whether it was rebuilt by this call.
func (p *Publisher) Current(ctx context.Context) (body []byte, changed bool, err error) {
	n, err := p.List.RevocationCount(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("publish revocations: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.built && n == p.count {
		return p.body, false, nil
	}
	var all []Entry
	var after *Hash
	for {
		page, err := p.List.Revocations(ctx, after, PageSize)
		if err != nil {
			return nil, false, fmt.Errorf("publish revocations: %w", err)
		}
		all = append(all, page...)
		if len(page) < PageSize {
			break
		}
		h := page[len(page)-1].UCI
		after = &h
	}
	var b strings.Builder
	if err := Build(p.Issuer, p.Now(), all).Encode(&b); err != nil {
		return nil, false, fmt.Errorf("publish revocations: %w", err)
	}
	p.body, p.count, p.built = []byte(b.String()), len(all), true
	return p.body, true, nil
}

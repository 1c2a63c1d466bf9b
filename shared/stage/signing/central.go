package signing

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/dcc"
	"github.com/vaxpass/vaxpass/shared/domain/facilitysig"
	"github.com/vaxpass/vaxpass/shared/domain/uvci"
	"github.com/vaxpass/vaxpass/shared/domain/vaccine"
	"github.com/vaxpass/vaxpass/shared/domain/vnname"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// CentralStore is what central signing reads and writes.
type CentralStore interface {
	// PutFacilitySignature keeps the newest verified signature of (person, facility).
	PutFacilitySignature(ctx context.Context, sig vaxpass.FacilitySignature) error
	// FacilitySignatures returns the stored signatures of a person, one per facility.
	FacilitySignatures(ctx context.Context, personID string) ([]vaxpass.FacilitySignature, error)
	// ActiveCertificate returns the person's certificate in status issued (vaxpass.ErrNotFound if none).
	ActiveCertificate(ctx context.Context, personID string) (vaxpass.Certificate, error)
	// ReplaceCertificate stores next as the person's active certificate; prev, when not nil,
	// is the certificate it replaces and is stored revoked. It is conditional on prev still
	// being the active one (on no active one when prev is nil): vaxpass.ErrConflict otherwise.
	ReplaceCertificate(ctx context.Context, next vaxpass.Certificate, prev *vaxpass.Certificate) error
}

// FacilityPublicKeys resolves a facility's verification key.
type FacilityPublicKeys interface {
	FacilityPublicKey(ctx context.Context, facilityID string) (*ecdsa.PublicKey, error)
}

// FacilityKey is one of the keys a facility has signed with.
type FacilityKey struct {
	KeyID  string
	Public *ecdsa.PublicKey
	// Revoked: what this key signed is refused.
	Revoked bool
}

// FacilityKeyring is FacilityPublicKeys that also knows a facility's former keys, so a
// signature made before a rotation still verifies and one made with a revoked key is
// refused. Keys come current first; fresh asks for a read past any cache (a key rotated
// in since the last read).
type FacilityKeyring interface {
	FacilityKeyring(ctx context.Context, facilityID string, fresh bool) ([]FacilityKey, error)
}

// ErrRevokedFacilityKey marks a facility signature made with a key since revoked (wrapped
// with ErrBadFacilitySignature): the facility signs the person again with its new key.
var ErrRevokedFacilityKey = errors.New("signed with a revoked facility key")

// Sealer signs a DCC into an HC1 string with the central key (the DSC).
type Sealer interface {
	Seal(ctx context.Context, c *dcc.Certificate, issuedAt time.Time) (hc1 string, expiresAt time.Time, kid string, err error)
}

// CentralService issues the EU DCC from facility-signed doses.
type CentralService struct {
	Store  CentralStore
	Keys   FacilityPublicKeys
	Sealer Sealer
	// Rand is the randomness of UVCIs (crypto/rand.Reader in production).
	Rand io.Reader
	Now  func() time.Time
}

// ErrBadFacilitySignature marks a signature that does not verify: retrying cannot help,
// so the message belongs in the dead-letter queue for ops.
var ErrBadFacilitySignature = errors.New("facility signature rejected")

// IssueOutcome says what central signing did with one facility signature.
type IssueOutcome string

const (
	Issued    IssueOutcome = "issued"    // a first certificate
	Reissued  IssueOutcome = "reissued"  // a new certificate replaced (and revoked) the old one
	Unchanged IssueOutcome = "unchanged" // the active certificate already says this
	NotYet    IssueOutcome = "not_eligible"
)

// Process handles one facility signature from the queue: verify it, keep it, and issue the
// person's certificate from all their facility-signed doses. It is idempotent: processing
// the same signature again changes nothing.
func (s *CentralService) Process(ctx context.Context, sig vaxpass.FacilitySignature) (IssueOutcome, *vaxpass.Certificate, error) {
	content, err := s.verify(ctx, sig)
	if err != nil {
		return "", nil, err
	}
	if content.PersonID != sig.PersonID || content.FacilityID != sig.FacilityID {
		return "", nil, fmt.Errorf("%w: envelope does not match the signed content", ErrBadFacilitySignature)
	}
	if err := s.Store.PutFacilitySignature(ctx, sig); err != nil {
		return "", nil, fmt.Errorf("store facility signature: %w", err)
	}
	return s.Issue(ctx, sig.PersonID)
}

// verify checks the signature with the facility's key, or with any of its keys when Keys
// is a FacilityKeyring: a signature made before a rotation verifies with the former key;
// one made with a revoked key is refused (ErrRevokedFacilityKey). A signature no cached
// key verifies is tried again with a fresh read, for a key rotated in since.
func (s *CentralService) verify(ctx context.Context, sig vaxpass.FacilitySignature) (facilitysig.Content, error) {
	unknown := func(err error) error {
		if errors.Is(err, vaxpass.ErrNotFound) {
			return fmt.Errorf("%w: unknown facility", ErrBadFacilitySignature)
		}
		return fmt.Errorf("facility key: %w", err)
	}
	ring, ok := s.Keys.(FacilityKeyring)
	if !ok {
		pub, err := s.Keys.FacilityPublicKey(ctx, sig.FacilityID)
		if err != nil {
			return facilitysig.Content{}, unknown(err)
		}
		content, err := SignedOf(sig).Verify(pub)
		if err != nil {
			return facilitysig.Content{}, fmt.Errorf("%w: %w", ErrBadFacilitySignature, err)
		}
		return content, nil
	}
	signed := SignedOf(sig)
	var last error = facilitysig.ErrSignature
	for _, fresh := range []bool{false, true} {
		keys, err := ring.FacilityKeyring(ctx, sig.FacilityID, fresh)
		if err != nil {
			return facilitysig.Content{}, unknown(err)
		}
		for _, k := range keys {
			content, err := signed.Verify(k.Public)
			if err != nil {
				last = err
				continue
			}
			if k.Revoked {
				return facilitysig.Content{}, fmt.Errorf("%w: %w (key %s)", ErrBadFacilitySignature, ErrRevokedFacilityKey, k.KeyID)
			}
			return content, nil
		}
	}
	return facilitysig.Content{}, fmt.Errorf("%w: %w", ErrBadFacilitySignature, last)
}

// maxIssueRounds bounds how often Issue starts again because another worker changed the
// person's certificate under it; past it the error goes back to the queue, whose
// redelivery is the next round.
const maxIssueRounds = 5

// ErrContended says a person's certificate kept changing while it was being issued: the
// caller retries later.
var ErrContended = errors.New("person's certificate changed during issuing")

// Issue (re)computes a person's certificate from their stored facility signatures.
//
// Workers issue concurrently, and two of them may hold signatures of one person from two
// facilities. Each has stored its own signature before it gets here, and each round reads
// the active certificate first and the signatures after it; ReplaceCertificate is
// conditional on the active certificate read. A worker X whose read of the signatures
// missed worker Y's therefore read the active certificate before Y stored it, so before
// Y's own round read anything: Y's round either writes first (and X's conditional write
// fails, X reads again and sees Y's signature) or writes after X, conditional on X's
// certificate or a later one, from signatures that include its own. The last write is
// thus always built from every signature stored before it, with no read after the
// write (one read less per certificate than reading the signatures first and checking
// them again after the write).
func (s *CentralService) Issue(ctx context.Context, personID string) (IssueOutcome, *vaxpass.Certificate, error) {
	for round := 1; ; round++ {
		prev, err := s.Store.ActiveCertificate(ctx, personID)
		var prevPtr *vaxpass.Certificate
		switch {
		case err == nil:
			prevPtr = &prev
		case !errors.Is(err, vaxpass.ErrNotFound):
			return "", nil, fmt.Errorf("read active certificate: %w", err)
		}
		sigs, err := s.Store.FacilitySignatures(ctx, personID)
		if err != nil {
			return "", nil, fmt.Errorf("read facility signatures: %w", err)
		}
		outcome, cert, err := s.issueFrom(ctx, personID, sigs, prevPtr)
		if !errors.Is(err, vaxpass.ErrConflict) {
			return outcome, cert, err
		}
		if round == maxIssueRounds {
			return "", nil, fmt.Errorf("issue for a person after %d rounds: %w", round, ErrContended)
		}
	}
}

// issueFrom issues from one read of the active certificate (prevPtr, nil when none) and
// then the signatures: Issued or Reissued when it wrote; vaxpass.ErrConflict (wrapped)
// when the active certificate changed since it was read.
func (s *CentralService) issueFrom(ctx context.Context, personID string, sigs []vaxpass.FacilitySignature, prevPtr *vaxpass.Certificate) (IssueOutcome, *vaxpass.Certificate, error) {
	contents := make([]facilitysig.Content, 0, len(sigs))
	for _, sg := range sigs {
		// Stored signatures were verified when stored; decoding re-checks their form.
		c, err := facilitysig.Decode(sg.Payload)
		if err != nil {
			return "", nil, fmt.Errorf("stored facility signature: %w", err)
		}
		contents = append(contents, c)
	}
	if len(contents) == 0 {
		return NotYet, nil, nil
	}
	person := slices.MaxFunc(contents, func(a, b facilitysig.Content) int { return a.SignedAt.Compare(b.SignedAt) })
	var doses []vaccine.Dose
	for _, c := range contents {
		for _, d := range c.Doses {
			doses = append(doses, vaccine.Dose{Vaccine: vaccine.Code(d.Vaccine), DoseNumber: d.DoseNumber, VaccinatedOn: d.VaccinatedOn})
		}
	}
	a, err := vaccine.Assess(doses)
	if err != nil {
		return "", nil, fmt.Errorf("assess doses: %w", err)
	}
	if !a.Eligible {
		return NotYet, nil, nil
	}

	draft, err := dcc.Build(dcc.Person{FullName: person.FullName, DOB: person.DOB}, a.Certified, uvci.Prefix+"X")
	if err != nil {
		return "", nil, fmt.Errorf("build certificate: %w", err)
	}
	hash := contentHash(draft, person.Nationality, a.DosesReceived)
	if prevPtr != nil && prevPtr.ContentHash == hash {
		return Unchanged, prevPtr, nil
	}

	ci, err := uvci.New(s.Rand)
	if err != nil {
		return "", nil, fmt.Errorf("new UVCI: %w", err)
	}
	// The draft passed schema validation with a placeholder ci of the same form; only ci changes.
	cert := draft
	cert.V[0].CI = ci
	now := s.Now().UTC().Truncate(time.Second)
	hc1, exp, kid, err := s.Sealer.Seal(ctx, cert, now)
	if err != nil {
		return "", nil, fmt.Errorf("seal certificate: %w", err)
	}
	next := vaxpass.Certificate{
		UVCI: ci, PersonID: personID, HC1: hc1, Status: vaxpass.CertIssued,
		IssuedAt: now, ExpiresAt: exp, KID: kid, ContentHash: hash,
		Fields:  fieldsOf(cert, a, person.Nationality),
		NameKey: vnname.Key(person.FullName), DOB: person.DOB,
		Version: 1,
	}
	outcome := Issued
	if prevPtr != nil {
		next.Replaces = prevPtr.UVCI
		outcome = Reissued
	}
	if err := s.Store.ReplaceCertificate(ctx, next, prevPtr); err != nil {
		return "", nil, fmt.Errorf("store certificate: %w", err)
	}
	return outcome, &next, nil
}

// contentHash fingerprints what a certificate says, leaving out ci (it is new for every
// certificate) and iat/exp (renewal changes them).
func contentHash(c *dcc.Certificate, nationality string, dosesReceived int) string {
	cp := *c
	cp.V = slices.Clone(c.V)
	cp.V[0].CI = ""
	b, _ := json.Marshal(struct {
		C  dcc.Certificate
		N  string
		DR int
	}{cp, nationality, dosesReceived})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

func fieldsOf(c *dcc.Certificate, a vaccine.Assessment, nationality string) vaxpass.Fields {
	v := c.V[0]
	name := c.Nam.FN
	if c.Nam.GN != "" {
		name += " " + c.Nam.GN
	}
	cd := a.Certified
	return vaxpass.Fields{
		FullName: name, DateOfBirth: c.DOB, Nationality: nationality,
		Disease: "COVID-19", DosesReceived: a.DosesReceived,
		DateOfVaccination: v.DT, DoseNumber: v.DN, TotalDoses: v.SD,
		Vaccine: cd.Vaccine.ProphylaxisDisplay, VaccineProduct: cd.Vaccine.ProductDisplay,
		Manufacturer: cd.Vaccine.ManufacturerDisplay, CertificateID: v.CI,
	}
}

// Package wire builds the system once, from ports. A backend (wire/local: bbolt and
// software keys; wire/cloud: DynamoDB, SQS, KMS and S3) fills Ports; System assembles
// every use case, route and handler over them, the same way for both. A feature written
// here therefore exists on both backends, and a Lambda that asks System for one handler
// links only what that handler needs (the builders are methods: the linker drops the
// ones a binary never calls).
package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/access"
	"github.com/vaxpass/vaxpass/shared/domain/dcc"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/edge/centralqueue"
	"github.com/vaxpass/vaxpass/shared/edge/dosestream"
	"github.com/vaxpass/vaxpass/shared/hc1/hcert"
	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/stage/ingest"
	"github.com/vaxpass/vaxpass/shared/stage/lookup"
	"github.com/vaxpass/vaxpass/shared/stage/matching"
	"github.com/vaxpass/vaxpass/shared/stage/renewal"
	"github.com/vaxpass/vaxpass/shared/stage/report"
	"github.com/vaxpass/vaxpass/shared/stage/reprocess"
	"github.com/vaxpass/vaxpass/shared/stage/revocation"
	"github.com/vaxpass/vaxpass/shared/stage/signing"
	"github.com/vaxpass/vaxpass/shared/stage/stats"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Store is the main store both backends provide (embedded.Store, awsddb.Store): facilities,
// dose records, facility signatures and certificates. It is the union of what the use
// cases and handlers declare they need.
type Store interface {
	FacilityByKeyHash(ctx context.Context, hash []byte) (vaxpass.Facility, error)
	GetDose(ctx context.Context, key vaxpass.DoseKey) (vaxpass.Dose, error)
	ActiveCertificate(ctx context.Context, personID string) (vaxpass.Certificate, error)
	ingest.DoseWriter
	matching.MatchWriter
	signing.FacilityStore
	signing.CentralStore
	renewal.Certs
	revocation.Certs
	reprocess.StatusLister
	reprocess.FacilitySignatures
	GetFacility(ctx context.Context, id string) (vaxpass.Facility, error)
	AddFacility(ctx context.Context, f vaxpass.Facility) error
	PersonDoses(ctx context.Context, personID string) ([]vaxpass.Dose, error)
	SaveMatchBatch(ctx context.Context, doses []vaxpass.Dose) (errs []error, err error)
	MarkSigned(ctx context.Context, doses []vaxpass.Dose, at time.Time) error
	// ListByCommune is the commune clerk's worklist and the registry officer's view.
	ListByCommune(ctx context.Context, commune string, status match.Status, after vaxpass.DoseKey, limit int) ([]vaxpass.Dose, error)
}

// statusScan is reprocessing's selection for a store without a scan of its own: the
// facility#status lists merged (reprocess.ScanByStatus), the rest from the store.
type statusScan struct {
	reprocess.ScanByStatus
	Store
}

// FacilityKeys are the facilities' signing keys (files or KMS keys).
type FacilityKeys interface {
	signing.FacilityKeys
	signing.FacilityPublicKeys
	// EnsureFacilityKey returns the key of a facility being registered, creating it when
	// needed, as the KeyID its record stores.
	EnsureFacilityKey(ctx context.Context, facilityID string) (keyID string, err error)
}

// AuditLog is the audit trail: every ops action and correction, with its actor.
type AuditLog interface {
	audit.Appender
	audit.Reader
}

// Ports are what a backend provides. Now, Store, Registry, Keys, Queue are needed by
// every system; the others by the features that use them (a nil port makes the feature
// that needs it fail with ErrNoPort when it is built, never silently do nothing).
type Ports struct {
	Now  func() time.Time
	Rand io.Reader
	Log  *slog.Logger

	Store    Store
	Registry match.Registry
	Keys     FacilityKeys
	// Queue is the central signing queue (a signing.BatchQueue sends pages at once);
	// BulkQueue, when set, takes bulk runs' signatures (read after Queue).
	Queue     signing.CentralQueue
	BulkQueue signing.CentralQueue
	// Sealer signs certificates with the DSC key; Resealer re-signs them for renewal.
	Sealer   signing.Sealer
	Resealer renewal.Sealer
	// Trust resolves DSCs by kid for verification; TrustListJSON is GET /v1/trustlist.
	Trust         hcert.TrustResolver
	TrustListJSON func(ctx context.Context) ([]byte, error)

	Audit         AuditLog
	Revocations   revocation.Store
	RenewalRuns   renewal.Runs
	ReprocessRuns reprocess.RunStore
	// DoseScan is reprocessing's selection (nil: reprocess.ScanByStatus over Store).
	DoseScan reprocess.DoseStore
	OpsKeys  OpsKeyStore

	// AccessKeys are the API keys of every role (facility, clerk, officer, ops).
	AccessKeys AccessKeyStore

	DeadLetters DeadLetters
	Stats       Stats
	// SigningRuns keeps facility signing runs; SigningQueue continues them in the
	// background (a goroutine locally, the facility signing function's queue on AWS).
	SigningRuns  signing.RunStore
	SigningQueue signing.RunQueue
	// SignInCall bounds POST /v1/signatures' signing in the call (default
	// httpapi.SignInCall); FacilityPageSize is how many people one facility signature
	// covers (default 500).
	SignInCall       time.Duration
	FacilityPageSize int
	// SignPagesInCall, when positive, also bounds the pages signed in the call.
	SignPagesInCall int
	// OnSigningPage, when set, is told every page a signing run signs (metrics).
	OnSigningPage func(signing.PageResult)
	// Background runs a begun reprocessing run outside the request that started it (a
	// goroutine of the server; a message to the ops function's work queue on AWS).
	Background RunStarter

	// LookupRate limits the public endpoints per client (default 20/s, burst 40).
	LookupRate apigw.RateLimit
	// LookupAttempts counts failed lookups per ID number (the public lookup's limit:
	// in-process locally, the ops table on AWS); LookupSecret, when set, keys the hash
	// the ID numbers are counted under.
	LookupAttempts lookup.AttemptStore
	LookupSecret   []byte
	// Reports keeps citizens' reports (POST /v1/reports; counted per ID number in
	// LookupAttempts under a key of their own).
	Reports report.Store
	// SecurityEvents records security events (security.Recorder): handlers that refuse
	// a request for a security reason are given it and tell it kind and route.
	SecurityEvents SecurityEvents
	// FacilityWorkers signs a facility's page with this many signatures in flight;
	// CentralConcurrency is how many people of a central signing batch are issued at once.
	FacilityWorkers    int
	CentralConcurrency int
}

// AccessKeyStore keeps the API keys of every role: only their SHA-256, with the role and
// subject each carries. A revoked key stays listed, and is refused at once.
type AccessKeyStore interface {
	// KeyByHash returns the key whose SHA-256 is hash (vaxpass.ErrNotFound when unknown);
	// a revoked key is returned with RevokedAt set: the caller refuses it.
	KeyByHash(ctx context.Context, hash []byte) (access.Key, error)
	// AddKey stores k (vaxpass.ErrConflict when its hash is stored already).
	AddKey(ctx context.Context, k access.Key) error
	// ListKeys lists every key, revoked ones included, oldest first.
	ListKeys(ctx context.Context) ([]access.Key, error)
	// RevokeKey revokes the key of ID id at at (vaxpass.ErrNotFound when none); a revoked
	// key is returned unchanged.
	RevokeKey(ctx context.Context, id string, at time.Time) (access.Key, error)
}

// SecurityEvents records security events: kind (security.Kinds) and the route key,
// never personal data.
type SecurityEvents interface {
	SecurityEvent(ctx context.Context, kind, route string)
}

// DeadLetters lists and redrives the dead letters of the central signing queue
// (vaxpass.DeadCentral) and of the matcher (vaxpass.DeadMatcher).
type DeadLetters interface {
	ListDead(ctx context.Context, queue, after string, limit int) ([]vaxpass.DeadLetter, error)
	// Redrive moves the named dead letters (all when ids is empty) back to their consumer;
	// failed counts those handed to it at once that failed again.
	Redrive(ctx context.Context, queue string, ids []string) (moved, failed int, err error)
}

// Stats gives the dashboard's numbers.
type Stats interface {
	Snapshot(ctx context.Context) (stats.Snapshot, error)
}

// RunStarter has a begun reprocessing run worked on in the background. found says the run
// existed already (it was resumed, not created): a backend whose workers outlive a request
// must not start a second worker on it.
type RunStarter interface {
	StartRun(ctx context.Context, runID string, found bool) error
}

// ErrNoPort: the backend did not provide what a feature needs.
var ErrNoPort = errors.New("wire: port not provided")

// System is the assembled system. Its builders are safe for concurrent use and build each
// part once.
type System struct {
	p Ports

	mu              sync.Mutex
	matching        *matching.Service
	facilitySigning *signing.FacilityService
	centralSigning  *signing.CentralService
	revoker         *revocation.Service
	publisher       *revocation.Publisher
	reprocessor     *reprocess.Service
}

// New checks the ports every system needs and returns the system.
func New(p Ports) (*System, error) {
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
	if p.LookupRate.Rate == 0 {
		p.LookupRate = apigw.RateLimit{Rate: 20, Burst: 40, MaxKeys: 100_000}
	}
	for name, ok := range map[string]bool{"Store": p.Store != nil, "Registry": p.Registry != nil, "Keys": p.Keys != nil, "Queue": p.Queue != nil, "Rand": p.Rand != nil} {
		if !ok {
			return nil, fmt.Errorf("%w: %s", ErrNoPort, name)
		}
	}
	return &System{p: p}, nil
}

// Ports returns the ports the system was built from.
func (s *System) Ports() Ports { return s.p }

// Log is the system's logger.
func (s *System) Log() *slog.Logger { return s.p.Log }

// Matching is the matcher use case (the doses stream's consumer).
func (s *System) Matching() *matching.Service {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.matching == nil {
		s.matching = &matching.Service{Doses: s.p.Store, Matcher: &match.Matcher{Registry: s.p.Registry, Now: s.p.Now}, Now: s.p.Now}
	}
	return s.matching
}

// StreamHandler is the matcher's entry point: batches of dose changes.
func (s *System) StreamHandler() *dosestream.Handler {
	return &dosestream.Handler{Matcher: s.Matching(), Log: s.p.Log}
}

// FacilitySigning is facility signing (POST /v1/signatures, the daily run, reprocessing).
func (s *System) FacilitySigning() *signing.FacilityService {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.facilitySigning == nil {
		s.facilitySigning = &signing.FacilityService{Store: s.p.Store, Keys: s.p.Keys, Queue: s.p.Queue, BulkQueue: s.p.BulkQueue, Now: s.p.Now, Workers: s.p.FacilityWorkers, PageSize: s.p.FacilityPageSize}
	}
	return s.facilitySigning
}

// SigningRuns is facility signing as runs: POST /v1/signatures, the daily run over every
// facility, continued in the background.
func (s *System) SigningRuns() (*signing.Runs, error) {
	if s.p.SigningRuns == nil || s.p.SigningQueue == nil {
		return nil, fmt.Errorf("%w: SigningRuns and SigningQueue (facility signing runs)", ErrNoPort)
	}
	return &signing.Runs{Signer: s.FacilitySigning(), Store: s.p.SigningRuns, Queue: s.p.SigningQueue, Now: s.p.Now, Rand: s.p.Rand, PagesInCall: s.p.SignPagesInCall, OnPage: s.p.OnSigningPage}, nil
}

// CentralSigning is central signing. With a revocation list, a certificate replaced by
// one with a new UVCI is listed as superseded first (SupersedeListing).
func (s *System) CentralSigning() (*signing.CentralService, error) {
	if s.p.Sealer == nil {
		return nil, fmt.Errorf("%w: Sealer (central signing)", ErrNoPort)
	}
	s.mu.Lock()
	built := s.centralSigning
	s.mu.Unlock()
	if built != nil {
		return built, nil
	}
	var store signing.CentralStore = s.p.Store
	if s.p.Revocations != nil {
		rev, err := s.Revoker()
		if err != nil {
			return nil, err
		}
		store = &SupersedeListing{CentralStore: s.p.Store, Revoker: rev}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.centralSigning == nil {
		s.centralSigning = &signing.CentralService{Store: store, Keys: s.facilityKeyring(), Sealer: s.p.Sealer, Rand: s.p.Rand, Now: s.p.Now}
	}
	return s.centralSigning, nil
}

// Worker is central signing's entry point: batches of the central queue.
func (s *System) Worker() (*centralqueue.Handler, error) {
	cs, err := s.CentralSigning()
	if err != nil {
		return nil, err
	}
	return &centralqueue.Handler{Issuer: cs, Log: s.p.Log, Concurrency: s.p.CentralConcurrency}, nil
}

// Revoker revokes certificates and keeps the revocation list.
func (s *System) Revoker() (*revocation.Service, error) {
	if s.p.Revocations == nil {
		return nil, fmt.Errorf("%w: Revocations", ErrNoPort)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.revoker == nil {
		s.revoker = &revocation.Service{List: s.p.Revocations, Certs: s.p.Store, Issuer: dcc.Country, Now: s.p.Now}
	}
	return s.revoker, nil
}

// Publisher renders the published revocation list (GET /v1/revocations).
func (s *System) Publisher() (*revocation.Publisher, error) {
	if s.p.Revocations == nil {
		return nil, fmt.Errorf("%w: Revocations", ErrNoPort)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.publisher == nil {
		s.publisher = &revocation.Publisher{List: s.p.Revocations, Issuer: dcc.Country, Now: s.p.Now}
	}
	return s.publisher, nil
}

// Renewal is the renewal use case paced by budget (nil: unpaced), shared by every slice
// and worker of its runs: the caller's (a token bucket locally, the stack's bulk KMS
// budget on AWS). progress, when set, is called per certificate looked at. The caller
// sets how a run is cut and worked (Slices, Workers, InFlight).
func (s *System) Renewal(budget renewal.Budget, progress func(int64)) (*renewal.Service, error) {
	if s.p.Resealer == nil || s.p.RenewalRuns == nil {
		return nil, fmt.Errorf("%w: Resealer and RenewalRuns (renewal)", ErrNoPort)
	}
	svc := &renewal.Service{
		Certs: s.p.Store, Runs: s.p.RenewalRuns, Budget: budget, Sealer: s.p.Resealer,
		Now: s.p.Now, Rand: s.p.Rand, Progress: progress,
	}
	if s.p.Revocations != nil {
		svc.Revocations = revocation.Lookup{List: s.p.Revocations}
	}
	return svc, nil
}

// Reprocessor is the reprocessing use case, every stage available.
func (s *System) Reprocessor() (*reprocess.Service, error) {
	if s.p.ReprocessRuns == nil {
		return nil, fmt.Errorf("%w: ReprocessRuns", ErrNoPort)
	}
	cs, err := s.CentralSigning()
	if err != nil {
		return nil, err
	}
	m := s.Matching()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reprocessor == nil {
		scan := s.p.DoseScan
		if scan == nil {
			scan = statusScan{ScanByStatus: reprocess.ScanByStatus{Lister: s.p.Store}, Store: s.p.Store}
		}
		s.reprocessor = &reprocess.Service{
			Doses: scan, Runs: s.p.ReprocessRuns, Matcher: m.Matcher,
			Keys: s.p.Keys, Queue: s.p.Queue, Signatures: s.p.Store,
			Issuer: cs, DryRunIssuer: reprocess.DryRunIssuer(cs), Certificates: s.p.Store,
			Now: s.p.Now, Rand: s.p.Rand,
		}
		if s.p.Audit != nil {
			s.reprocessor.Audit = s.p.Audit
		}
	}
	return s.reprocessor, nil
}

// SupersedeListing is central signing's store with one addition: before a certificate
// replaces another with a new UVCI (what the person's certificate says changed), the old
// UVCI goes onto the revocation list as superseded, so its QR stops verifying. Listing
// first means a crash in between leaves the old one listed and the retried issuance
// replaces it; never a replaced certificate that still verifies.
type SupersedeListing struct {
	signing.CentralStore
	Revoker *revocation.Service
}

// ReplaceCertificate implements signing.CentralStore.
func (s *SupersedeListing) ReplaceCertificate(ctx context.Context, next vaxpass.Certificate, prev *vaxpass.Certificate) error {
	if prev != nil && !strings.EqualFold(prev.UVCI, next.UVCI) {
		if err := s.Revoker.Superseded(ctx, "central-signing", *prev, next); err != nil {
			return err
		}
	}
	return s.CentralStore.ReplaceCertificate(ctx, next, prev)
}

// Lookup is the public lookup use case.
func (s *System) Lookup() *lookup.Service { return &lookup.Service{Certs: s.p.Store} }

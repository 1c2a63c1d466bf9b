// Package wire wires the system. OpenLocal assembles the embedded backend -- one bbolt file,
// software keys in the data directory -- around the same use cases and Lambda handlers that
// run on AWS, and Local.Run drives them: an HTTP server turning requests into API Gateway
// events, the change-feed pump into the stream handler, the queue pump into the SQS handler.
package local

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/edge/centralqueue"
	"github.com/vaxpass/vaxpass/shared/edge/dosestream"
	"github.com/vaxpass/vaxpass/shared/stage/lookup"
	"github.com/vaxpass/vaxpass/shared/stage/matching"
	"github.com/vaxpass/vaxpass/shared/stage/renewal"
	"github.com/vaxpass/vaxpass/shared/stage/security"
	"github.com/vaxpass/vaxpass/shared/stage/signing"
	"github.com/vaxpass/vaxpass/shared/stage/stats"
	"github.com/vaxpass/vaxpass/shared/stage/verification"
	"github.com/vaxpass/vaxpass/shared/store/doseitem"
	"github.com/vaxpass/vaxpass/shared/store/embedded"
	"github.com/vaxpass/vaxpass/shared/store/embedded/feed"
	"github.com/vaxpass/vaxpass/shared/store/embedded/queue"
	"github.com/vaxpass/vaxpass/shared/store/filekeys"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/shared/wire"
	"github.com/vaxpass/vaxpass/shared/wire/routes"
	"github.com/vaxpass/vaxpass/shared/wire/routes/facility"
	"github.com/vaxpass/vaxpass/shared/wire/routes/public"
)

// Names of the embedded queues and feed consumers.
const (
	CentralQueueName = "central-signing"
	MatcherConsumer  = "matcher"
)

// Options configure the local system.
type Options struct {
	DataDir string
	// SignInCall and FacilityPageSize: see wire.Ports (tests make them small to see a
	// signing run go on in the background).
	SignInCall       time.Duration
	FacilityPageSize int
	SignPagesInCall  int
	// Now is the clock (time.Now when nil); Rand the randomness of keys and UVCIs
	// (crypto/rand when nil).
	Now  func() time.Time
	Rand io.Reader
	Log  *slog.Logger
	// LookupRate limits the public endpoints per client (default 20/s, burst 40).
	LookupRate apigw.RateLimit
	// FacilitySignEvery runs facility signing for every facility on this period
	// (the programme's daily signing; default 24h; negative disables).
	FacilitySignEvery time.Duration
	// PollInterval is how often idle pumps look for work (default 200ms).
	PollInterval time.Duration
	// MaxReceiveCount is the central queue's redrive policy (default 5).
	MaxReceiveCount int
	// VisibilityTimeout of central signing messages (default 30s).
	VisibilityTimeout time.Duration
}

// Local is the whole system on the embedded backend: the ports of the data directory
// (Store, DB, Keys, Central, Queue) and the system built over them (Sys), with the parts
// the pumps and the CLI drive kept at hand.
type Local struct {
	opt     Options
	DB      *embedded.DB
	Store   *embedded.Store
	Keys    *filekeys.Store
	Central *filekeys.Central
	Queue   *queue.Queue

	// Sys is the one wiring (shared/wire), as on AWS.
	Sys             *wire.System
	Router          *apigw.Router
	Stream          *dosestream.Handler
	Worker          *centralqueue.Handler
	FacilitySigning *signing.FacilityService
	CentralSigning  *signing.CentralService
	Matching        *matching.Service
	Verifier        *verification.Service
	// Ops are renewal, revocation and the audit trail (ops_certs.go).
	Ops *Ops
	// Reprocessing is reprocessing, dead letters and the dashboard (ops_reprocess.go).
	Reprocessing *Reprocessing

	signingWorker *signingWorker
}

// OpenLocal opens (creating on first use) the data directory and assembles the system.
func OpenLocal(opt Options) (*Local, error) {
	opt = withDefaults(opt)
	db, err := embedded.Open(opt.DataDir)
	if err != nil {
		return nil, err
	}
	l := &Local{opt: opt, DB: db}
	if err := l.assemble(); err != nil {
		db.Close()
		return nil, err
	}
	return l, nil
}

func withDefaults(opt Options) Options {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Rand == nil {
		opt.Rand = rand.Reader
	}
	if opt.Log == nil {
		opt.Log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	}
	if opt.FacilitySignEvery == 0 {
		opt.FacilitySignEvery = 24 * time.Hour
	}
	if opt.PollInterval == 0 {
		opt.PollInterval = 200 * time.Millisecond
	}
	if opt.MaxReceiveCount == 0 {
		opt.MaxReceiveCount = 5
	}
	if opt.VisibilityTimeout == 0 {
		opt.VisibilityTimeout = 30 * time.Second
	}
	return opt
}

// assemble opens the embedded ports and builds the system over them.
func (l *Local) assemble() error {
	opt := l.opt
	var err error
	if l.Store, err = embedded.OpenStore(l.DB, embedded.StoreOptions{Now: opt.Now}); err != nil {
		return err
	}
	// The dashboard's counters: a database from before them is counted once, here, not
	// inside the first upload or dashboard read after the upgrade.
	if err = l.Store.EnsureStats(context.Background()); err != nil {
		return fmt.Errorf("dashboard counters: %w", err)
	}
	if l.Keys, err = filekeys.Open(opt.DataDir); err != nil {
		return err
	}
	if l.Central, err = filekeys.EnsureCentral(opt.DataDir, opt.Now()); err != nil {
		return err
	}
	if l.Queue, err = queue.Open(l.DB.Bolt(), CentralQueueName, queue.Config{MaxReceiveCount: opt.MaxReceiveCount, DedupWindow: 24 * time.Hour, Now: opt.Now}); err != nil {
		return err
	}
	o := &Ops{l: l, RenewEvery: DefaultRenewEvery, RenewWindow: renewal.DefaultWindow, RenewRate: DefaultRenewRate, PublishEvery: DefaultPublishEvery}
	if o.Audit, err = embedded.OpenAuditLog(l.DB, opt.Now); err != nil {
		return err
	}
	if o.Revocations, err = embedded.OpenRevocationList(l.DB); err != nil {
		return err
	}
	if o.RenewalRuns, err = embedded.OpenRenewalRuns(l.DB); err != nil {
		return err
	}
	o.OpsKeys = NewOpsKeyFile(opt.DataDir, opt.Now, opt.Rand)
	l.Ops = o
	sw := &signingWorker{l: l, running: map[string]bool{}}
	if sw.store, err = embedded.OpenSigningRuns(l.DB); err != nil {
		return err
	}
	l.signingWorker = sw
	r := &Reprocessing{l: l, running: map[string]bool{}}
	secEvents, err := embedded.OpenSecurityEvents(l.DB)
	if err != nil {
		return err
	}
	secRec := &security.Recorder{Store: secEvents, Log: opt.Log, Now: opt.Now}
	r.Stats = &stats.Service{Counters: l.Store, Now: opt.Now, Security: security.Flushed{Recorder: secRec, Reader: secEvents}}
	// The failed-lookup counts live in this process only, so their hash key can too.
	lookupSecret := make([]byte, 32)
	if _, err := rand.Read(lookupSecret); err != nil {
		return fmt.Errorf("lookup limit key: %w", err)
	}
	l.Reprocessing = r
	reports, err := embedded.OpenReports(l.DB)
	if err != nil {
		return err
	}

	l.Sys, err = wire.New(wire.Ports{
		Now: opt.Now, Rand: opt.Rand, Log: opt.Log,
		Store: l.Store, Registry: l.DB.Registry(), Keys: fileKeys{l.Keys}, Queue: centralQueue{l.Queue},
		Sealer:   &signing.HC1Sealer{Signer: l.Central.Signer, DSC: l.Central.DSC},
		Resealer: &renewal.HC1Resealer{Signer: l.Central.Signer, DSC: l.Central.DSC},
		Trust:    l.Central.TrustList,
		TrustListJSON: func(context.Context) ([]byte, error) {
			return l.Central.TrustList.MarshalJSON()
		},
		Audit: o.Audit, Revocations: o.Revocations, RenewalRuns: o.RenewalRuns,
		ReprocessRuns: l.Store, DoseScan: l.Store, OpsKeys: o.OpsKeys, AccessKeys: o.OpsKeys,
		DeadLetters: localDeadLetters{l}, Stats: r.Stats, Background: r,
		SigningRuns: sw.store, SigningQueue: sw,
		// One process answers every lookup: the failed-lookup counts are in its memory.
		LookupAttempts: lookup.NewMemoryAttempts(lookup.DefaultMemoryKeys, opt.Now), LookupSecret: lookupSecret,
		Reports:        reports,
		SecurityEvents: secRec, LookupRate: opt.LookupRate,
		SignInCall: opt.SignInCall, FacilityPageSize: opt.FacilityPageSize, SignPagesInCall: opt.SignPagesInCall,
		// Many messages at once: their store writes share commits (see embedded storeBatch).
		CentralConcurrency: centralConcurrency,
	})
	if err != nil {
		return err
	}
	sys := l.Sys
	l.Matching = sys.Matching()
	l.Stream = sys.StreamHandler()
	l.FacilitySigning = sys.FacilitySigning()
	if sw.runs, err = sys.SigningRuns(); err != nil {
		return err
	}
	if l.CentralSigning, err = sys.CentralSigning(); err != nil {
		return err
	}
	if l.Worker, err = sys.Worker(); err != nil {
		return err
	}
	if l.Verifier, err = public.Verifier(sys); err != nil {
		return err
	}
	if o.Revoker, err = sys.Revoker(); err != nil {
		return err
	}
	if o.Publisher, err = sys.Publisher(); err != nil {
		return err
	}
	if o.OpsAuth, err = routes.OpsAuth(sys); err != nil {
		return err
	}
	if r.Service, err = sys.Reprocessor(); err != nil {
		return err
	}
	r.Auth = o.OpsAuth
	// One router for everything: the embedded server is every function at once.
	runs, err := sys.ReprocessRuns()
	if err != nil {
		return err
	}
	l.Router, err = routes.Router(facility.Group(sys), public.Group(sys), routes.Ops(sys, runs), public.LookupPages, routes.OpsPages)
	if err != nil {
		return err
	}
	// Bodies too large, busy pools and keyed routes without a key are security events too.
	routes.GuardEvents(l.Router, sys.Ports().SecurityEvents)
	return nil
}

// fileKeys gives the file keys the context-taking registration of wire.FacilityKeys.
type fileKeys struct{ *filekeys.Store }

// EnsureFacilityKey implements wire.FacilityKeys: an existing key is kept, so a retry after
// a failed store write reuses it.
func (k fileKeys) EnsureFacilityKey(_ context.Context, facilityID string) (string, error) {
	id, _, err := k.Store.EnsureFacilityKey(facilityID)
	return id, err
}

// AddFacility registers a vaccination site (wire.System.AddFacility).
func (l *Local) AddFacility(ctx context.Context, id, name string) (string, error) {
	return l.Sys.AddFacility(ctx, id, name)
}

// Close closes the database.
func (l *Local) Close() error { return l.DB.Close() }

// Central signing's batches: centralBatchSize messages per handler call, centralConcurrency
// people of a batch processed at once (measured in BENCHMARKS.md). Batches are taken one
// at a time, so the outcome is that of processing the queue in order: a killed and resumed
// run issues what an uninterrupted one does (tests/system/ops).
const (
	// matcherBatchSize records per matcher call: each call's saves are one commit.
	matcherBatchSize   = 1000
	centralBatchSize   = 100
	centralConcurrency = 32
)

// centralQueue sends facility signatures to the embedded central signing queue.
type centralQueue struct{ q *queue.Queue }

func (c centralQueue) SendSignature(ctx context.Context, sig vaxpass.FacilitySignature) error {
	return c.SendSignatures(ctx, []vaxpass.FacilitySignature{sig})
}

// SendSignatures implements signing.BatchQueue: the signatures in one transaction.
func (c centralQueue) SendSignatures(ctx context.Context, sigs []vaxpass.FacilitySignature) error {
	msgs := make([]queue.Outgoing, len(sigs))
	for i, sig := range sigs {
		body, err := centralqueue.Encode(sig)
		if err != nil {
			return err
		}
		msgs[i] = queue.Outgoing{Body: body, SendOptions: queue.SendOptions{DedupID: signatureDedupID(sig)}}
	}
	_, err := c.q.SendBatch(ctx, msgs)
	return err
}

// signatureDedupID makes the same signature sent twice (a retry after a crash) one message.
func signatureDedupID(sig vaxpass.FacilitySignature) string {
	// A batch signature is shared by a page of people: the person tells them apart.
	sum := sha256.Sum256(append([]byte(sig.PersonID+"\x00"), sig.Signature...))
	return hex.EncodeToString(sum[:16])
}

// HTTPHandler is the local HTTP front: every request through the API Gateway bridge to
// the one router, pages included, as API Gateway does on AWS.
func (l *Local) HTTPHandler() http.Handler {
	return &apigw.Bridge{Routes: l.Router, Now: l.opt.Now, Logger: l.opt.Log}
}

// Run serves HTTP on addr and drives the pumps until ctx ends; ready is called with the
// bound address once the server accepts connections.
func (l *Local) Run(ctx context.Context, addr string, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: l.HTTPHandler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute, WriteTimeout: time.Minute, MaxHeaderBytes: 64 << 10}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	goRun := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errs <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	goRun("matcher pump", l.RunMatcher)
	goRun("central signing pump", l.RunCentralSigning)
	goRun("scheduled renewal", l.Ops.RunRenewal)
	goRun("revocation list", l.Ops.RunRevocationPublisher)
	goRun("ops dashboard and reprocessing", l.Reprocessing.Run)
	goRun("facility signing runs", l.signingWorker.Run)
	if l.opt.FacilitySignEvery > 0 {
		goRun("daily facility signing", l.runDailySigning)
	}
	go func() {
		<-ctx.Done()
		shut, done := context.WithTimeout(context.Background(), 10*time.Second)
		defer done()
		srv.Shutdown(shut)
	}()
	if ready != nil {
		ready(ln.Addr())
	}
	serveErr := srv.Serve(ln)
	cancel()
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return nil
}

// MatcherFilter is the matcher's subscription filter: only doses waiting for a match,
// as the FilterCriteria of the matcher's DynamoDB stream event in template.yaml.
var MatcherFilter = feed.Filter{Attr: doseitem.AttrNeedsMatch, S: doseitem.NeedsMatchValue}

// RunMatcher pumps the doses change feed into the stream handler (the matcher).
func (l *Local) RunMatcher(ctx context.Context) error {
	p, err := feed.NewPump(l.Store.DoseFeed(), MatcherConsumer, l.Stream.Handle, feed.PumpConfig{
		BatchSize: matcherBatchSize, PollInterval: l.opt.PollInterval, Filter: &MatcherFilter,
		OnError: func(err error) { l.opt.Log.Warn("matcher pump", "err", err) },
	})
	if err != nil {
		return err
	}
	return p.Run(ctx)
}

// RunCentralSigning pumps the central signing queue into the SQS handler.
func (l *Local) RunCentralSigning(ctx context.Context) error {
	p, err := queue.NewPump(l.Queue, l.Worker.Handle, queue.PumpConfig{
		BatchSize: centralBatchSize, Concurrency: 1, VisibilityTimeout: l.opt.VisibilityTimeout, PollInterval: l.opt.PollInterval,
		OnError: func(err error) { l.opt.Log.Warn("central signing pump", "err", err) },
	})
	if err != nil {
		return err
	}
	return p.Run(ctx)
}

// runDailySigning signs for every facility on the configured period (first run one period
// after start: a restart must not re-sign everything at once).
func (l *Local) runDailySigning(ctx context.Context) error {
	t := time.NewTicker(l.opt.FacilitySignEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := l.SignAllFacilities(ctx); err != nil {
				l.opt.Log.Warn("daily facility signing", "err", err)
			}
		}
	}
}

// SignAllFacilities runs facility signing for every registered facility.
func (l *Local) SignAllFacilities(ctx context.Context) error {
	facs, err := l.Store.ListFacilities(ctx)
	if err != nil {
		return err
	}
	for _, f := range facs {
		if _, err := l.FacilitySigning.SignAll(ctx, f.ID); err != nil {
			return fmt.Errorf("facility %s: %w", f.ID, err)
		}
	}
	return nil
}

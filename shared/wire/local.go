// Package wire wires the system. OpenLocal assembles the embedded backend -- one bbolt file,
// software keys in the data directory -- around the same use cases and Lambda handlers that
// run on AWS, and Local.Run drives them: an HTTP server turning requests into API Gateway
// events, the change-feed pump into the stream handler, the queue pump into the SQS handler.
package wire

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
	"strings"
	"sync"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/edge/api"
	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/edge/stream"
	"github.com/vaxpass/vaxpass/shared/edge/worker"
	"github.com/vaxpass/vaxpass/shared/hc1/qr"
	"github.com/vaxpass/vaxpass/shared/stage/ingest"
	"github.com/vaxpass/vaxpass/shared/stage/lookup"
	"github.com/vaxpass/vaxpass/shared/stage/matching"
	"github.com/vaxpass/vaxpass/shared/stage/signing"
	"github.com/vaxpass/vaxpass/shared/stage/verification"
	"github.com/vaxpass/vaxpass/shared/store/doseitem"
	"github.com/vaxpass/vaxpass/shared/store/embedded"
	"github.com/vaxpass/vaxpass/shared/store/embedded/feed"
	"github.com/vaxpass/vaxpass/shared/store/embedded/queue"
	"github.com/vaxpass/vaxpass/shared/store/filekeys"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/web"
)

// Names of the embedded queues and feed consumers.
const (
	CentralQueueName = "central-signing"
	MatcherConsumer  = "matcher"
)

// Options configure the local system.
type Options struct {
	DataDir string
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

// Local is the whole system on the embedded backend.
type Local struct {
	opt     Options
	DB      *embedded.DB
	Store   *embedded.Store
	Keys    *filekeys.Store
	Central *filekeys.Central
	Queue   *queue.Queue

	Router          *apigw.Router
	Stream          *stream.Handler
	Worker          *worker.Handler
	FacilitySigning *signing.FacilityService
	CentralSigning  *signing.CentralService
	Matching        *matching.Service
	Verifier        *verification.Service
	Limiter         *apigw.Limiter
	// Ops are renewal, corrections, revocation and the audit trail (ops_certs.go).
	Ops *Ops
	// Reprocessing is reprocessing, dead letters and the dashboard (ops_reprocess.go).
	Reprocessing *Reprocessing
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
	if opt.LookupRate.Rate == 0 {
		opt.LookupRate = apigw.RateLimit{Rate: 20, Burst: 40, MaxKeys: 100_000}
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

func (l *Local) assemble() error {
	opt := l.opt
	var err error
	if l.Store, err = embedded.OpenStore(l.DB, embedded.StoreOptions{Now: opt.Now}); err != nil {
		return err
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

	matcher := &match.Matcher{Registry: l.DB.Registry(), Now: opt.Now}
	l.Matching = &matching.Service{Doses: l.Store, Matcher: matcher, Now: opt.Now}
	l.Stream = &stream.Handler{Matcher: l.Matching, Log: opt.Log}
	l.FacilitySigning = &signing.FacilityService{Store: l.Store, Keys: l.Keys, Queue: centralQueue{l.Queue}, Now: opt.Now}
	l.CentralSigning = &signing.CentralService{
		Store: l.Store, Keys: l.Keys, Rand: opt.Rand, Now: opt.Now,
		Sealer: &signing.HC1Sealer{Signer: l.Central.Signer, DSC: l.Central.DSC},
	}
	// Many messages at once: their store writes share commits (see embedded storeBatch).
	l.Worker = &worker.Handler{Issuer: l.CentralSigning, Log: opt.Log, Concurrency: centralConcurrency}
	l.Verifier = &verification.Service{Trust: l.Central.TrustList, Now: opt.Now}
	if l.Limiter, err = apigw.NewLimiter(opt.LookupRate, opt.Now); err != nil {
		return err
	}

	l.Router = apigw.NewRouter()
	fac := &api.Facility{
		Facilities: l.Store, Ingest: &ingest.Service{Doses: l.Store, Now: opt.Now},
		Doses: l.Store, Certs: l.Store, Signer: l.FacilitySigning, Worklists: Worklists{Now: opt.Now},
		Now: opt.Now, Log: opt.Log,
	}
	fac.Routes(l.Router)
	pub := &api.Public{
		Lookup: &lookup.Service{Certs: l.Store}, Verifier: l.Verifier,
		TrustList: func(context.Context) ([]byte, error) { return l.Central.TrustList.MarshalJSON() },
		RenderQR:  func(hc1 string) ([]byte, error) { return qr.PNG(hc1) },
		Limiter:   l.Limiter, Now: opt.Now, Log: opt.Log,
	}
	pub.Routes(l.Router)
	if l.Ops, err = AttachOps(l); err != nil {
		return err
	}
	l.Reprocessing = AttachReprocessing(l, l.Ops)
	return nil
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
		body, err := worker.Encode(sig)
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
	sum := sha256.Sum256(sig.Signature)
	return hex.EncodeToString(sum[:16])
}

// HTTPHandler is the local HTTP front: the API through the API Gateway bridge, the lookup
// page for everything else.
func (l *Local) HTTPHandler() http.Handler {
	bridge := &apigw.Bridge{Routes: l.Router, Now: l.opt.Now, Logger: l.opt.Log}
	page := l.Reprocessing.Handler(web.Handler())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			bridge.ServeHTTP(w, r)
			return
		}
		page.ServeHTTP(w, r)
	})
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

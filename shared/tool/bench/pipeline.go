package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/edge/centralqueue"
	"github.com/vaxpass/vaxpass/shared/edge/dosestream"
	"github.com/vaxpass/vaxpass/shared/stage/ingest"
	"github.com/vaxpass/vaxpass/shared/stage/matching"
	"github.com/vaxpass/vaxpass/shared/stage/signing"
	"github.com/vaxpass/vaxpass/shared/tool/registry"
	"github.com/vaxpass/vaxpass/shared/tool/synth"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

// FacilityID names the bench's i-th facility.
func FacilityID(i int) string { return fmt.Sprintf("bench-site-%03d", i) }

func (r *runner) loadRegistry(ctx context.Context) (int, error) {
	f, err := os.Open(filepath.Join(r.popDir, synth.RegistryFile))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	rd, err := registry.NewReader(f)
	if err != nil {
		return 0, fmt.Errorf("registry: %w", err)
	}
	bar := r.cfg.NewProgress("load registry", int64(r.cfg.People))
	defer bar.Done()
	var readErr error
	people := func(yield func(match.Person) bool) {
		for p, err := range rd.All() {
			if err != nil {
				readErr = err
				return
			}
			bar.Add(1)
			if !yield(p) {
				return
			}
		}
	}
	st, err := r.sys.DB.LoadRegistry(ctx, people)
	if err == nil {
		err = readErr
	}
	if err != nil {
		return 0, fmt.Errorf("load registry: %w", err)
	}
	return st.Loaded(), nil
}

func (r *runner) addFacilities(ctx context.Context) error {
	for i := range r.cfg.Facilities {
		key, err := r.sys.AddFacility(ctx, FacilityID(i), fmt.Sprintf("Bench vaccination site %d", i))
		if err != nil {
			return fmt.Errorf("add facility: %w", err)
		}
		r.keys = append(r.keys, key)
	}
	return nil
}

// facilityOf spreads the generator's sites ("F079012-..." names site 012 of province 079)
// over the bench facilities: a person's doses mostly come from one site, boosters
// sometimes from another, as in the generated data.
func (r *runner) facilityOf(sourceID []byte) int {
	site := sourceID
	if i := bytes.IndexByte(sourceID, '-'); i > 0 {
		site = sourceID[:i]
	}
	h := fnv.New32a()
	h.Write(site)
	return int(h.Sum32() % uint32(r.cfg.Facilities))
}

type uploadJob struct {
	facility int
	body     []byte
	records  int
}

// pipeline runs the stages, overlapped as `serve` runs them unless cfg.Sequential. The
// pumps are the system's own (local.Local.RunMatcher, RunCentralSigning, with their batch
// sizes and concurrency); the bench only counts what their handlers did.
func (r *runner) pipeline(ctx context.Context, start time.Time) error {
	at := func(t time.Time) float64 { return t.Sub(start).Seconds() }
	add := func(name string, items int, unit string, from, to time.Time) {
		s := stage(name, items, unit, to.Sub(from))
		s.From = at(from)
		r.res.Stages = append(r.res.Stages, s)
	}
	seq := r.cfg.Sequential
	matched := &countingMatcher{next: r.sys.Stream.Matcher, bar: &lateProgress{}}
	r.sys.Stream.Matcher = matched
	issued := &countingIssuer{next: r.sys.Worker.Issuer, bar: &lateProgress{}}
	r.sys.Worker.Issuer = issued

	// Upload, with the matcher consuming the change feed meanwhile (unless sequential);
	// one progress line at a time: the matcher's events are counted silently while the
	// upload shows its own, and shown once it catches up alone.
	r.cfg.Log("stage upload")
	var matcher *pumpRun
	if !seq {
		matcher = runPump(ctx, r.sys.RunMatcher)
	}
	records, err := r.upload(ctx)
	if err != nil {
		stopPump(matcher)
		return fmt.Errorf("upload: %w", err)
	}
	uploaded := time.Now()
	add("upload", records, "records", start, uploaded)

	r.cfg.Log("stage match")
	matchFrom := start
	if seq {
		matchFrom = uploaded
		matcher = runPump(ctx, r.sys.RunMatcher)
	}
	defer func() { stopPump(matcher) }()
	matched.bar.show(r.cfg.NewProgress("match (records)", int64(r.res.Accepted)))
	err = r.waitMatched(ctx, matcher, matched, int64(r.res.Accepted))
	matched.bar.Done()
	if err != nil {
		return fmt.Errorf("match: %w", err)
	}
	matchEnd := time.Now()
	add("match", r.res.Accepted, "records", matchFrom, matchEnd)

	// Facility signing, with the matcher consuming the MODIFY events of the doses marked
	// signed and (unless sequential) central signing consuming the queue meanwhile.
	r.cfg.Log("stage facility sign")
	var central *pumpRun
	if !seq {
		central = runPump(ctx, r.sys.RunCentralSigning)
	}
	defer func() { stopPump(central) }()
	sent, err := r.facilitySign(ctx)
	if err != nil {
		return fmt.Errorf("facility sign: %w", err)
	}
	r.res.FacilitySignatures = sent
	signed := time.Now()
	add("facility sign", sent, "signatures", matchEnd, signed)

	r.cfg.Log("stage central sign")
	centralFrom := matchEnd
	if seq {
		centralFrom = signed
		central = runPump(ctx, r.sys.RunCentralSigning)
	}
	issued.bar.show(r.cfg.NewProgress("central sign (signatures)", int64(sent)))
	err = r.waitIssued(ctx, central, issued, int64(sent))
	issued.bar.Done()
	if err != nil {
		return fmt.Errorf("central sign: %w", err)
	}
	issuedAt := time.Now()
	add("central sign", int(issued.done.Load()), "signatures", centralFrom, issuedAt)

	// What the matcher has not consumed yet: the feed ends empty.
	r.cfg.Log("stage feed drain")
	before := matched.events.Load()
	if err := r.waitFeedConsumed(ctx, matcher); err != nil {
		return fmt.Errorf("feed drain: %w", err)
	}
	add("feed drain", int(matched.events.Load()-before), "events", issuedAt, time.Now())
	return nil
}

// pumpRun is one of the system's pumps running until stopped.
type pumpRun struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

func runPump(ctx context.Context, run func(context.Context) error) *pumpRun {
	ctx, cancel := context.WithCancel(ctx)
	p := &pumpRun{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.err = run(ctx)
	}()
	return p
}

// stopPump stops p (nil: nothing) and answers why it ended, if not by being stopped.
func stopPump(p *pumpRun) error {
	if p == nil {
		return nil
	}
	p.cancel()
	<-p.done
	return p.err
}

// exited answers the error of a pump that ended on its own (it only ends on a fatal
// storage error), nil while it runs.
func (p *pumpRun) exited() error {
	select {
	case <-p.done:
		if p.err == nil {
			return errors.New("pump stopped")
		}
		return p.err
	default:
		return nil
	}
}

// waitMatched waits until the matcher has matched want records. It watches a counter:
// feed.Stats walks the retained events, and polling it while millions are retained would
// cost the run a core and hold back the writers (a read transaction blocks the file's
// growth). The feed is looked at every few seconds only, for a matcher stuck on a record.
func (r *runner) waitMatched(ctx context.Context, matcher *pumpRun, m *countingMatcher, want int64) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	lastCheck, lastCount := time.Now(), int64(-1)
	for m.matched.Load() < want {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if err := matcher.exited(); err != nil {
			return fmt.Errorf("matcher pump: %w", err)
		}
		if time.Since(lastCheck) < 5*time.Second {
			continue
		}
		lastCheck = time.Now()
		st, err := r.sys.Store.DoseFeed().Stats(ctx)
		if err != nil {
			return err
		}
		cs, registered := st.Consumers[local.MatcherConsumer]
		if cs.Attempts > 20 || cs.Dead > 0 {
			return fmt.Errorf("matcher stuck: %d failed attempts at sequence %d, %d dead letters", cs.Attempts, cs.FailingSeq, cs.Dead)
		}
		n := m.matched.Load()
		if registered && cs.Lag == 0 && n == lastCount {
			return fmt.Errorf("the matcher consumed the feed but matched %d of %d records", n, want)
		}
		lastCount = n
	}
	return nil
}

// waitFeedConsumed waits until the matcher's checkpoint is the feed's last event: every
// change, its own MODIFY events included, was handled (nothing else writes doses then).
func (r *runner) waitFeedConsumed(ctx context.Context, matcher *pumpRun) error {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		st, err := r.sys.Store.DoseFeed().Stats(ctx)
		if err != nil {
			return err
		}
		// The pump registers its consumer when it starts: until then there is no lag to read.
		cs, registered := st.Consumers[local.MatcherConsumer]
		if registered && cs.Lag == 0 && st.LastSeq > 0 {
			return nil
		}
		if cs.Attempts > 20 {
			return fmt.Errorf("matcher keeps failing at sequence %d", cs.FailingSeq)
		}
		if err := matcher.exited(); err != nil {
			return fmt.Errorf("matcher pump: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// waitIssued waits until central signing processed want signatures.
func (r *runner) waitIssued(ctx context.Context, central *pumpRun, issued *countingIssuer, want int64) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	lastCheck := time.Now()
	for issued.done.Load() < want {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if err := central.exited(); err != nil {
			return fmt.Errorf("central signing pump: %w", err)
		}
		if time.Since(lastCheck) < time.Second {
			continue
		}
		lastCheck = time.Now()
		// Messages that failed for good went to the dead-letter area: nothing is left to
		// receive although not all were handled.
		q, err := r.sys.Queue.Counts(ctx)
		if err == nil && q.Visible+q.InFlight+q.Delayed == 0 && issued.done.Load() < want {
			return fmt.Errorf("queue empty after %d of %d signatures (%d dead letters)", issued.done.Load(), want, q.Dead)
		}
	}
	return nil
}

// countingMatcher counts the change events the stream handler hands to matching and the
// records it matched (wrote a status for).
type countingMatcher struct {
	next    dosestream.DoseMatcher
	events  atomic.Int64
	matched atomic.Int64
	bar     *lateProgress
}

func (m *countingMatcher) MatchDoses(ctx context.Context, doses []vaxpass.Dose) ([]matching.Outcome, []error) {
	out, errs := m.next.MatchDoses(ctx, doses)
	n := int64(0)
	for _, o := range out {
		if o == matching.Matched {
			n++
		}
	}
	m.events.Add(int64(len(doses)))
	m.matched.Add(n)
	m.bar.Add(n)
	return out, errs
}

// countingIssuer counts the facility signatures central signing processed; it passes
// whole batches on when the issuer it wraps takes them (centralqueue.BatchIssuer).
type countingIssuer struct {
	next centralqueue.Issuer
	done atomic.Int64
	bar  *lateProgress
}

func (c *countingIssuer) Process(ctx context.Context, sig vaxpass.FacilitySignature) (signing.IssueOutcome, *vaxpass.Certificate, error) {
	out, cert, err := c.next.Process(ctx, sig)
	if err == nil {
		c.done.Add(1)
		c.bar.Add(1)
	}
	return out, cert, err
}

// batchIssuer is centralqueue.BatchIssuer, declared here so the bench builds without it.
type batchIssuer interface {
	ProcessBatch(ctx context.Context, sigs []vaxpass.FacilitySignature) []error
}

func (c *countingIssuer) ProcessBatch(ctx context.Context, sigs []vaxpass.FacilitySignature) []error {
	bi, ok := c.next.(batchIssuer)
	if !ok {
		errs := make([]error, len(sigs))
		for i, sig := range sigs {
			_, _, errs[i] = c.Process(ctx, sig)
		}
		return errs
	}
	errs := bi.ProcessBatch(ctx, sigs)
	n := int64(0)
	for _, e := range errs {
		if e == nil {
			n++
		}
	}
	c.done.Add(n)
	c.bar.Add(n)
	return errs
}

// upload posts every generated record through the facility API (bridge, router, handler,
// ingest use case, store), UploadBatch records a request, Workers requests at once.
func (r *runner) upload(ctx context.Context) (int, error) {
	f, err := os.Open(filepath.Join(r.popDir, synth.RecordsFile))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	bar := r.cfg.NewProgress("upload records", int64(r.res.Records))
	defer bar.Done()

	handler := r.sys.HTTPHandler()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan uploadJob, r.cfg.Workers)
	var accepted, rejected, duplicates atomic.Int64
	var wg sync.WaitGroup
	for range r.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for job := range jobs {
				if ctx.Err() != nil {
					continue
				}
				rep, err := r.post(ctx, handler, job)
				if err != nil {
					cancel(err)
					continue
				}
				accepted.Add(int64(rep.Accepted))
				rejected.Add(int64(rep.Rejected))
				duplicates.Add(int64(rep.Duplicates))
				bar.Add(int64(job.records))
			}
		}()
	}

	bufs := make([][]byte, r.cfg.Facilities)
	counts := make([]int, r.cfg.Facilities)
	flush := func(i int) {
		if counts[i] == 0 {
			return
		}
		body := append(bufs[i], "]}"...)
		select {
		case jobs <- uploadJob{facility: i, body: body, records: counts[i]}:
		case <-ctx.Done():
		}
		bufs[i], counts[i] = nil, 0
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	lines := 0
	for sc.Scan() && ctx.Err() == nil {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		lines++
		i := r.facilityOf(sourceIDOf(line))
		if counts[i] == 0 {
			bufs[i] = append(make([]byte, 0, 400*r.cfg.UploadBatch), `{"records":[`...)
		} else {
			bufs[i] = append(bufs[i], ',')
		}
		bufs[i] = append(bufs[i], line...)
		counts[i]++
		if counts[i] == r.cfg.UploadBatch {
			flush(i)
		}
	}
	for i := range bufs {
		flush(i)
	}
	close(jobs)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return 0, err
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read records: %w", err)
	}
	r.res.Accepted, r.res.Rejected, r.res.Duplicates = int(accepted.Load()), int(rejected.Load()), int(duplicates.Load())
	if lines != r.res.Records {
		return 0, fmt.Errorf("read %d records, the generator wrote %d", lines, r.res.Records)
	}
	return lines, nil
}

// sourceIDOf picks the source_id out of a generated record line (its first field).
func sourceIDOf(line []byte) []byte {
	const prefix = `{"source_id":"`
	if !bytes.HasPrefix(line, []byte(prefix)) {
		return nil
	}
	rest := line[len(prefix):]
	if i := bytes.IndexByte(rest, '"'); i >= 0 {
		return rest[:i]
	}
	return nil
}

func (r *runner) post(ctx context.Context, h http.Handler, job uploadJob) (ingest.Report, error) {
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/doses", bytes.NewReader(job.body))
	req.Header.Set("Authorization", "Bearer "+r.keys[job.facility])
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var rep ingest.Report
	if rec.Code != http.StatusOK {
		return rep, fmt.Errorf("POST /v1/doses: status %d: %.300s", rec.Code, rec.Body.String())
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
		return rep, fmt.Errorf("POST /v1/doses: answer: %w", err)
	}
	if rep.Accepted+rep.Rejected+rep.Duplicates != job.records {
		return rep, fmt.Errorf("POST /v1/doses: %d verdicts for %d records", rep.Accepted+rep.Rejected+rep.Duplicates, job.records)
	}
	return rep, nil
}

// countingQueue counts the facility signatures sent to central signing.
type countingQueue struct {
	next interface {
		SendSignature(ctx context.Context, sig vaxpass.FacilitySignature) error
	}
	sent *atomic.Int64
	bar  Progress
}

func (q countingQueue) SendSignature(ctx context.Context, sig vaxpass.FacilitySignature) error {
	if err := q.next.SendSignature(ctx, sig); err != nil {
		return err
	}
	q.sent.Add(1)
	q.bar.Add(1)
	return nil
}

// SendSignatures keeps the wrapped queue's batching, when it has it.
func (q countingQueue) SendSignatures(ctx context.Context, sigs []vaxpass.FacilitySignature) error {
	bs, ok := q.next.(signing.BatchQueue)
	if !ok {
		for _, sig := range sigs {
			if err := q.SendSignature(ctx, sig); err != nil {
				return err
			}
		}
		return nil
	}
	if err := bs.SendSignatures(ctx, sigs); err != nil {
		return err
	}
	q.sent.Add(int64(len(sigs)))
	q.bar.Add(int64(len(sigs)))
	return nil
}

// facilitySign runs FacilityService.SignAll for every facility, Workers facilities at
// once (each facility calls POST /v1/signatures on its own); it answers the signatures
// sent to central signing.
func (r *runner) facilitySign(ctx context.Context) (int, error) {
	bar := r.cfg.NewProgress("facility sign (signatures)", 0)
	defer bar.Done()
	var sent atomic.Int64
	svc := *r.sys.FacilitySigning
	svc.Queue = countingQueue{next: r.sys.FacilitySigning.Queue, sent: &sent, bar: bar}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan int)
	var wg sync.WaitGroup
	for range r.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if _, err := svc.SignAll(ctx, FacilityID(i)); err != nil {
					cancel(fmt.Errorf("facility %s: %w", FacilityID(i), err))
				}
			}
		}()
	}
	for i := range r.cfg.Facilities {
		select {
		case work <- i:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return 0, err
	}
	return int(sent.Load()), nil
}

// lateProgress counts from the start and hands its count to a display once one is shown.
type lateProgress struct {
	mu    sync.Mutex
	count int64
	p     Progress
}

func (l *lateProgress) Add(n int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.count += n
	if l.p != nil {
		l.p.Add(n)
	}
}

// show starts displaying on p, with what was counted so far.
func (l *lateProgress) show(p Progress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.p = p
	p.Add(l.count)
}

func (l *lateProgress) Done() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.p != nil {
		l.p.Done()
	}
}

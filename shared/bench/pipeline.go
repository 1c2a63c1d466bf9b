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

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/app"
	"github.com/vaxpass/vaxpass/shared/embedded/feed"
	"github.com/vaxpass/vaxpass/shared/embedded/queue"
	"github.com/vaxpass/vaxpass/shared/ingest"
	"github.com/vaxpass/vaxpass/shared/match"
	"github.com/vaxpass/vaxpass/shared/registry"
	"github.com/vaxpass/vaxpass/shared/synth"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// MatchBatch is the matcher pump's batch size: app.Local.RunMatcher's.
const MatchBatch = 100

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

// upload posts every generated record through the facility API (bridge, router, handler,
// ingest use case, store), UploadBatch records a request, Workers requests at once.
func (r *runner) upload(ctx context.Context) (Stage, error) {
	start := time.Now()
	f, err := os.Open(filepath.Join(r.popDir, synth.RecordsFile))
	if err != nil {
		return Stage{}, err
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
		return Stage{}, err
	}
	if err := sc.Err(); err != nil {
		return Stage{}, fmt.Errorf("read records: %w", err)
	}
	r.res.Accepted, r.res.Rejected, r.res.Duplicates = int(accepted.Load()), int(rejected.Load()), int(duplicates.Load())
	if lines != r.res.Records {
		return Stage{}, fmt.Errorf("read %d records, the generator wrote %d", lines, r.res.Records)
	}
	return stage("upload", lines, "records", time.Since(start)), nil
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

func (r *runner) matcherPump() (*feed.Pump, error) {
	return feed.NewPump(r.sys.Store.DoseFeed(), app.MatcherConsumer, r.sys.Stream.Handle, feed.PumpConfig{
		BatchSize: MatchBatch, PollInterval: 20 * time.Millisecond,
	})
}

// match runs the matcher pump (the stream handler on the doses change feed) until it has
// consumed every event, its own MODIFY events included.
func (r *runner) match(ctx context.Context) (Stage, error) {
	start := time.Now()
	// Every accepted record is an INSERT, and matching it writes a MODIFY the matcher
	// sees (and skips) too.
	bar := r.cfg.NewProgress("match (change events)", 2*int64(r.res.Accepted))
	defer bar.Done()
	n, err := r.drain(ctx, bar)
	if err != nil {
		return Stage{}, err
	}
	_ = n
	return stage("match", r.res.Accepted, "records", time.Since(start)), nil
}

// drain runs the matcher pump until the feed is consumed; it answers the events handled.
func (r *runner) drain(ctx context.Context, bar Progress) (int, error) {
	p, err := r.matcherPump()
	if err != nil {
		return 0, err
	}
	total, failedInARow := 0, 0
	for {
		res, err := p.RunOnce(ctx)
		if err != nil {
			return total, err
		}
		if res.Received == 0 {
			return total, nil
		}
		total += res.Succeeded
		bar.Add(int64(res.Succeeded))
		if res.Failed > res.DeadLettered {
			if failedInARow++; failedInARow > 20 {
				return total, fmt.Errorf("matcher keeps failing at checkpoint %d", res.Checkpoint)
			}
			time.Sleep(50 * time.Millisecond)
		} else {
			failedInARow = 0
		}
	}
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

// facilitySign runs FacilityService.SignAll for every facility, Workers facilities at
// once (each facility calls POST /v1/signatures on its own), while the matcher pump
// consumes the MODIFY events of the doses being marked signed, as `serve` would.
func (r *runner) facilitySign(ctx context.Context) (Stage, error) {
	start := time.Now()
	bar := r.cfg.NewProgress("facility sign (people)", 0)
	defer bar.Done()
	var sent atomic.Int64
	svc := *r.sys.FacilitySigning
	svc.Queue = countingQueue{next: r.sys.FacilitySigning.Queue, sent: &sent, bar: bar}

	stopMatcher, err := r.backgroundMatcher(ctx)
	if err != nil {
		return Stage{}, err
	}
	defer stopMatcher()

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
		return Stage{}, err
	}
	r.res.FacilitySignatures = int(sent.Load())
	return stage("facility sign", r.res.FacilitySignatures, "signatures", time.Since(start)), nil
}

// backgroundMatcher runs the matcher pump until the returned stop is called.
func (r *runner) backgroundMatcher(ctx context.Context) (stop func(), err error) {
	p, err := r.matcherPump()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx)
	}()
	return func() { cancel(); <-done }, nil
}

// centralSign runs the central signing queue pump (the SQS handler over CentralService)
// with Workers batches at once until every facility signature sent has been handled.
func (r *runner) centralSign(ctx context.Context) (Stage, error) {
	start := time.Now()
	want := int64(r.res.FacilitySignatures)
	bar := r.cfg.NewProgress("central sign (signatures)", want)
	defer bar.Done()
	var handled, failed atomic.Int64
	allDone := make(chan struct{})
	var once sync.Once
	h := func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		resp, err := r.sys.Worker.Handle(ctx, ev)
		if err != nil {
			failed.Add(int64(len(ev.Records)))
			return resp, err
		}
		ok := int64(len(ev.Records) - len(resp.BatchItemFailures))
		failed.Add(int64(len(resp.BatchItemFailures)))
		bar.Add(ok)
		if handled.Add(ok) >= want {
			once.Do(func() { close(allDone) })
		}
		return resp, nil
	}
	p, err := queue.NewPump(r.sys.Queue, h, queue.PumpConfig{
		BatchSize: r.cfg.CentralBatch, Concurrency: r.cfg.Workers,
		VisibilityTimeout: 30 * time.Second, PollInterval: 20 * time.Millisecond,
	})
	if err != nil {
		return Stage{}, err
	}
	stopMatcher, err := r.backgroundMatcher(ctx)
	if err != nil {
		return Stage{}, err
	}
	defer stopMatcher()
	pctx, cancel := context.WithCancel(ctx)
	pumpErr := make(chan error, 1)
	go func() { pumpErr <- p.Run(pctx) }()
	if want == 0 {
		once.Do(func() { close(allDone) })
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var stuck error
wait:
	for {
		select {
		case <-allDone:
			break wait
		case <-ctx.Done():
			break wait
		case <-tick.C:
			// Messages that failed for good went to the dead-letter area: nothing is left
			// to receive although not all were handled.
			c, err := r.sys.Queue.Counts(ctx)
			if err == nil && c.Visible+c.InFlight+c.Delayed == 0 && handled.Load() < want {
				stuck = fmt.Errorf("queue empty after %d of %d signatures (%d dead letters)", handled.Load(), want, c.Dead)
				break wait
			}
		}
	}
	cancel()
	if err := <-pumpErr; err != nil {
		return Stage{}, err
	}
	if err := errors.Join(ctx.Err(), stuck); err != nil {
		return Stage{}, err
	}
	return stage("central sign", int(handled.Load()), "signatures", time.Since(start)), nil
}

// drainFeed lets the matcher consume what is left of the change feed (the MODIFY events
// of doses marked signed), so the run ends with nothing pending anywhere.
func (r *runner) drainFeed(ctx context.Context) (Stage, error) {
	start := time.Now()
	n, err := r.drain(ctx, nopProgress{})
	if err != nil {
		return Stage{}, err
	}
	return stage("feed drain", n, "events", time.Since(start)), nil
}

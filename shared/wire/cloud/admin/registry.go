package admin

// The registry load at national size (100 million people, a ~6 GB extract).
//
// Design: parallel writers into the stack's own registry table, not S3 + ImportTable.
// ImportTable only creates a new table, while the stack's functions are wired to the
// registry table of the template (REGISTRY_TABLE): loading through an import would need an
// indirection (an SSM parameter read by every function, a switch, the old table's
// retirement), and it cannot update a live registry. BatchWriteItem writes into the live
// table, so the same command loads the national extract and a province's update, and a
// rerun is harmless (puts are idempotent). For the very first load of an empty stack an
// import is cheaper (no write units; see BENCHMARKS): that is a deploy-time option of the
// template (ImportSourceSpecification on RegistryTable, from an S3 CSV of the checked
// columns id,full_name,dob,gender,name_key,name_year), not something a load can switch to.
//
// How: one reader parses the extract in file order (about a million people a second on
// one core, 25 times the 40,000 write units a second a table takes by default) and cuts
// it into chunks of ChunkRecords records. Each person of a chunk goes to the writer its
// ID number hashes to; the writers (Writers of them) put 25 people per BatchWriteItem and
// wait out throttling (awsregistry.Registry.Put). A person's lines all go to one writer,
// which writes in file order: when an ID repeats in the file, its last line wins, however
// the writers interleave, exactly as in a one-writer load.
//
// Resume: a chunk is done when every writer has written its share; the checkpoint, a
// local file beside the input, is moved past the done chunks that follow it without a gap
// (records, their byte offset and line, counts). A rerun seeks to that offset and redoes
// everything after it, chunks written before the interruption included: the writes are
// puts of the same items, and each writer redoes them in file order, so the last line of
// an ID still wins. The checkpoint lives beside the input rather than in the ops table:
// it belongs to the operator's file (named by its size and the hash of its first MiB),
// needs no table of the stack, and works for a load from any machine with the file.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/store/awsregistry"
	"github.com/vaxpass/vaxpass/shared/tool/registry"
)

// PeopleWriter writes a batch of at most 25 people (one BatchWriteItem), each replacing
// whoever held its ID number, waiting out throttling; retries counts the extra requests
// throttling cost. Writing a person twice is harmless. It must be safe for concurrent
// use. *awsregistry.Registry implements it.
type PeopleWriter interface {
	Put(ctx context.Context, people []match.Person) (retries int, err error)
}

// writeBatch is how many people go to one Put (BatchWriteItem's limit).
const writeBatch = 25

// Defaults of LoadOptions.
const (
	// DefaultWriters saturates a new on-demand table: it takes 4,000 write units a second
	// at first, and a person costs 2 (the table and the by_name index); one writer puts
	// 1,250-2,500 people a second at in-region latencies (10-20 ms a request). More writers are useful once the
	// table has scaled (it doubles its previous peak) or was pre-warmed.
	DefaultWriters = 4
	MaxWriters     = 256
	// DefaultChunkRecords is the records between two checkpoints: at 20,000 people a second
	// a checkpoint every half second, and what a resumed load redoes at most per writer.
	DefaultChunkRecords = 10_000
	// DefaultMaxRejected stops a load whose extract is mostly not valid (a wrong file, a
	// shifted column) instead of reporting a hundred million bad lines.
	DefaultMaxRejected = 1000
)

// ErrTooManyRejected ends a load that found more invalid lines than LoadOptions.MaxRejected.
var ErrTooManyRejected = errors.New("too many lines rejected")

// LoadOptions tune LoadRegistryInto.
type LoadOptions struct {
	// CheckpointDir holds the checkpoint; "" puts it beside the input file.
	CheckpointDir string
	// Writers write in parallel (default DefaultWriters, at most MaxWriters).
	Writers int
	// ChunkRecords is how many records are read between two checkpoints (default
	// DefaultChunkRecords).
	ChunkRecords int
	// MaxRejected is how many invalid lines a load reports and passes over; at one more it
	// stops with ErrTooManyRejected. 0 stops at the first invalid line; negative: no limit
	// (the command's default is DefaultMaxRejected).
	MaxRejected int64
	// Progress hears where the load is: at the start, every ProgressEvery (default a
	// second) and at the end, from one goroutine.
	Progress      func(LoadProgress)
	ProgressEvery time.Duration
	// Rejected hears of every line that is not a valid person, in file order, from one
	// goroutine (it never carries the line's values: personal data). A resumed load
	// reports again the rejected lines after its checkpoint.
	Rejected func(*registry.LineError)
}

// LoadProgress is where a load is.
type LoadProgress struct {
	// Records are the data records read so far (the header excluded), earlier runs'
	// included; Skipped the ones a resumed load passed over because an earlier run had
	// written them.
	Records int64
	Skipped int64
	// Loaded people are written for good (up to the checkpoint), Rejected lines refused
	// (read so far), both including earlier runs'.
	Loaded   int64
	Rejected int64
	// Written people were put by this run (the chunks in flight included), Retries the
	// requests throttling cost it.
	Written int64
	Retries int64
	// Offset is how far into the file the reader is (bytes), Start where this run began
	// reading, Size the file's size.
	Offset int64
	Start  int64
	Size   int64
	// Elapsed is this run's time so far.
	Elapsed time.Duration
}

// PeoplePerSecond is this run's rate.
func (p LoadProgress) PeoplePerSecond() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Written) / p.Elapsed.Seconds()
}

// ETA is the time left at this run's pace through the file (0 when not known yet).
func (p LoadProgress) ETA() time.Duration {
	done := p.Offset - p.Start
	if done <= 0 || p.Elapsed <= 0 {
		return 0
	}
	return time.Duration(float64(p.Elapsed) * float64(max(p.Size-p.Offset, 0)) / float64(done))
}

// LoadResult is what a load did in all, earlier interrupted runs included.
type LoadResult struct {
	Records  int64 `json:"records"`
	Loaded   int64 `json:"loaded"`
	Rejected int64 `json:"rejected"`
	// ResumedAt is the number of records a resumed load skipped (0: loaded from the start).
	ResumedAt int64 `json:"resumed_at"`
	// Writers wrote in parallel; Retries are the requests throttling cost this run.
	Writers int   `json:"writers"`
	Retries int64 `json:"throttled_retries"`
}

// Checkpoint is a load's place, written when a chunk (and every chunk before it) is
// written. It names the file by its size and the SHA-256 of its first MiB, so a rerun on a
// changed file starts over instead of skipping records it never wrote.
type Checkpoint struct {
	Version int    `json:"version"`
	File    string `json:"file"`
	Size    int64  `json:"size"`
	Head    string `json:"head_sha256"`
	// Records are done (written or rejected); Offset is the byte just after the last of
	// them, Line the line it ended on: where a resumed load starts reading.
	Records  int64     `json:"records"`
	Offset   int64     `json:"offset"`
	Line     int       `json:"line"`
	Loaded   int64     `json:"loaded"`
	Rejected int64     `json:"rejected"`
	Updated  time.Time `json:"updated_at"`
}

const (
	checkpointVersion = 2
	headBytes         = 1 << 20
)

// LoadRegistry loads a registry extract (CSV: id_number,full_name,dob,gender; see
// shared/tool/registry) into the stack's registry table. See LoadRegistryInto.
func (a *Admin) LoadRegistry(ctx context.Context, csvFile string, opt LoadOptions) (LoadResult, error) {
	var w PeopleWriter = a.Stack.Registry
	cfg := a.Stack.Config()
	if opt.Writers > awshttp.DefaultHTTPTransportMaxIdleConnsPerHost && cfg.SDK != nil {
		// The SDK keeps 10 idle connections per host: more writers would open (TLS) and
		// close a connection per request. A client of their own keeps one per writer.
		client := dynamodb.NewFromConfig(*cfg.SDK, func(o *dynamodb.Options) {
			o.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
				t.MaxIdleConnsPerHost = opt.Writers
				t.MaxIdleConns = max(t.MaxIdleConns, opt.Writers)
			})
		})
		reg, err := awsregistry.New(client, cfg.RegistryTable)
		if err != nil {
			return LoadResult{}, err
		}
		w = reg
	}
	return LoadRegistryInto(ctx, w, csvFile, opt)
}

// chunk is a run of ChunkRecords records: its people are split between the writers.
type chunk struct {
	seq     int64
	pending int // writers' shares not yet written; guarded by load.mu
	// end is where the chunk ends, and the totals of the file up to there.
	end      registry.Position
	records  int64
	loaded   int64
	rejected int64
}

type share struct {
	c      *chunk
	people []match.Person
}

// load is one run of LoadRegistryInto.
type load struct {
	w    PeopleWriter
	opt  LoadOptions
	stop context.CancelCauseFunc

	mu   sync.Mutex  // guards chunk.pending
	done chan *chunk // chunks every writer has finished

	written, retries atomic.Int64
	// Of the reader, for progress.
	records, rejected, offset atomic.Int64
}

// LoadRegistryInto loads the extract csvFile through w with opt.Writers parallel writers,
// resumably (see the notes at the top of this file). A load that is killed or fails is
// resumed by running it again with the same file; a finished load removes its checkpoint,
// so loading the same file later loads it again. The checkpoint is written atomically (a
// temporary file renamed over it) beside the input as "<file>.<hash>.checkpoint", or in
// opt.CheckpointDir.
//
// Invalid lines are reported (opt.Rejected) with their line number and field, counted,
// and not loaded; past opt.MaxRejected of them the load stops with ErrTooManyRejected. A
// failure of the file (a line too long, a read error) ends the load with an error naming
// the file.
func LoadRegistryInto(ctx context.Context, w PeopleWriter, csvFile string, opt LoadOptions) (LoadResult, error) {
	started := time.Now()
	if opt.Writers <= 0 {
		opt.Writers = DefaultWriters
	}
	opt.Writers = min(opt.Writers, MaxWriters)
	if opt.ChunkRecords <= 0 {
		opt.ChunkRecords = DefaultChunkRecords
	}
	if opt.ProgressEvery <= 0 {
		opt.ProgressEvery = time.Second
	}
	res := LoadResult{Writers: opt.Writers}
	f, err := os.Open(csvFile)
	if err != nil {
		return res, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return res, err
	}
	if !fi.Mode().IsRegular() {
		return res, fmt.Errorf("%s: not a regular file (a checkpoint needs a file it can read again)", csvFile)
	}
	head, err := headHash(f)
	if err != nil {
		return res, fmt.Errorf("%s: %w", csvFile, err)
	}
	cpPath := checkpointPath(csvFile, opt.CheckpointDir, head)
	cp := Checkpoint{Version: checkpointVersion, File: filepath.Base(csvFile), Size: fi.Size(), Head: head}
	if old, ok, err := readCheckpoint(cpPath); err != nil {
		return res, err
	} else if ok && old.Version == cp.Version && old.Size == cp.Size && old.Head == cp.Head {
		if err := atRecordEnd(f, old.Offset); err != nil {
			return res, fmt.Errorf("checkpoint %s: %w (remove it to load from the start)", cpPath, err)
		}
		cp = old
	}
	res.ResumedAt, res.Loaded, res.Rejected, res.Records = cp.Records, cp.Loaded, cp.Rejected, cp.Records
	// Written before the first batch: a directory where no checkpoint can be written is
	// found out now, not after an hour of loading.
	if err := writeCheckpoint(cpPath, cp); err != nil {
		return res, fmt.Errorf("checkpoint: %w (pass a writable checkpoint directory)", err)
	}

	var rd *registry.Reader
	if cp.Records > 0 {
		rd, err = registry.NewReaderAt(f, registry.Position{Offset: cp.Offset, Line: cp.Line})
	} else if _, err = f.Seek(0, io.SeekStart); err == nil {
		rd, err = registry.NewReader(f)
	}
	if err != nil {
		return res, fmt.Errorf("%s: %w", csvFile, err)
	}
	start := rd.Position()

	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	l := &load{w: w, opt: opt, stop: stop, done: make(chan *chunk, 4*opt.Writers+4)}
	l.records.Store(cp.Records)
	l.rejected.Store(cp.Rejected)
	l.offset.Store(start.Offset)

	progress := func() {
		if opt.Progress != nil {
			opt.Progress(LoadProgress{Records: l.records.Load(), Skipped: res.ResumedAt, Loaded: cp.Loaded,
				Rejected: l.rejected.Load(), Written: l.written.Load(), Retries: l.retries.Load(),
				Offset: l.offset.Load(), Start: start.Offset, Size: fi.Size(), Elapsed: time.Since(started)})
		}
	}
	// At once, before a reader or writer runs: where a resumed load starts.
	progress()

	queues := make([]chan share, opt.Writers)
	var writers sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan share, 2)
		writers.Add(1)
		go func() {
			defer writers.Done()
			l.write(ctx, queues[i])
		}()
	}
	var readErr error // the reader's own failure (not its stopping for another)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		if err := l.read(ctx, rd, queues, cp); err != nil && ctx.Err() == nil {
			readErr = err
			stop(err)
		}
		for _, q := range queues {
			close(q)
		}
	}()
	go func() {
		writers.Wait()
		<-readDone
		close(l.done)
	}()

	// This goroutine owns the checkpoint: it moves it over the chunks done without a gap.
	tick := time.NewTicker(opt.ProgressEvery)
	defer tick.Stop()
	var cpErr error
	finished := map[int64]*chunk{}
	next := int64(0)
loop:
	for {
		select {
		case c, ok := <-l.done:
			if !ok {
				break loop
			}
			finished[c.seq] = c
			moved := false
			for finished[next] != nil {
				c := finished[next]
				delete(finished, next)
				next++
				cp.Records, cp.Offset, cp.Line = c.records, c.end.Offset, c.end.Line
				cp.Loaded, cp.Rejected = c.loaded, c.rejected
				moved = true
			}
			if moved && cpErr == nil {
				cp.Updated = time.Now().UTC()
				if err := writeCheckpoint(cpPath, cp); err != nil {
					cpErr = fmt.Errorf("checkpoint: %w", err)
					stop(cpErr)
				}
			}
		case <-tick.C:
			progress()
		}
	}
	progress()
	res.Records, res.Loaded, res.Rejected = cp.Records, cp.Loaded, cp.Rejected
	res.Retries = l.retries.Load()
	if err := context.Cause(ctx); err != nil {
		if readErr != nil && err == readErr && !errors.Is(err, ErrTooManyRejected) {
			return res, fmt.Errorf("%s: %w", csvFile, err)
		}
		return res, err
	}
	if cp.Offset != fi.Size() {
		// Every chunk is written but the reader stopped short of the end: the file grew
		// while it was read. Nothing after cp.Offset is known to be loaded.
		return res, fmt.Errorf("%s: read up to byte %d of %d: the file changed during the load; run again", csvFile, cp.Offset, fi.Size())
	}
	if err := removeCheckpoint(cpPath); err != nil {
		return res, fmt.Errorf("checkpoint: %w", err)
	}
	return res, nil
}

// read cuts the extract into chunks and hands each writer its share of each, in file
// order. It returns nil at the end of the file.
func (l *load) read(ctx context.Context, rd *registry.Reader, queues []chan share, cp Checkpoint) error {
	n := len(queues)
	records, loaded, rejected := cp.Records, cp.Loaded, cp.Rejected
	shares := make([][]match.Person, n)
	var seq int64
	inChunk := 0
	flush := func() error {
		c := &chunk{seq: seq, end: rd.Position(), records: records, loaded: loaded, rejected: rejected}
		seq++
		inChunk = 0
		for _, s := range shares {
			if len(s) > 0 {
				c.pending++
			}
		}
		if c.pending == 0 { // no people: only rejected lines, or the end of the file
			return send(ctx, l.done, c)
		}
		for i, s := range shares {
			if len(s) == 0 {
				continue
			}
			if err := send(ctx, queues[i], share{c: c, people: s}); err != nil {
				return err
			}
			shares[i] = make([]match.Person, 0, cap(s))
		}
		return nil
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		p, err := rd.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var le *registry.LineError
		if err != nil && !errors.As(err, &le) {
			return err
		}
		records++
		inChunk++
		if le != nil {
			rejected++
			if l.opt.Rejected != nil {
				l.opt.Rejected(le)
			}
			if l.opt.MaxRejected >= 0 && rejected > l.opt.MaxRejected {
				return fmt.Errorf("%w: line %d is invalid line %d, more than the %d allowed: the load stopped; check the extract (its columns?), then run again",
					ErrTooManyRejected, le.Line, rejected, l.opt.MaxRejected)
			}
		} else {
			loaded++
			i := writerOf(p.IDNumber, n)
			shares[i] = append(shares[i], p)
		}
		l.records.Store(records)
		l.rejected.Store(rejected)
		if inChunk == l.opt.ChunkRecords {
			l.offset.Store(rd.Position().Offset)
			if err := flush(); err != nil {
				return err
			}
		}
	}
	// Always a last chunk, empty or not: it ends at the end of the file (blank lines
	// after the last record included), which a finished load checks it reached.
	l.offset.Store(rd.Position().Offset)
	return flush()
}

// send hands v over unless the load stops first.
func send[T any](ctx context.Context, ch chan<- T, v T) error {
	select {
	case ch <- v:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// write puts each share it is handed, 25 people a request, in order; the last writer of a
// chunk hands it to the checkpoint. After a failure it stops the load and only drains
// its queue.
func (l *load) write(ctx context.Context, queue <-chan share) {
	for s := range queue {
		if ctx.Err() != nil {
			continue
		}
		failed := false
		for b := s.people; len(b) > 0 && !failed; {
			batch := b[:min(writeBatch, len(b))]
			b = b[len(batch):]
			retries, err := l.w.Put(ctx, batch)
			l.retries.Add(int64(retries))
			if err != nil {
				l.stop(err)
				failed = true
				continue
			}
			l.written.Add(int64(len(batch)))
		}
		if failed {
			continue
		}
		l.mu.Lock()
		s.c.pending--
		last := s.c.pending == 0
		l.mu.Unlock()
		if last {
			send(ctx, l.done, s.c)
		}
	}
}

// writerOf is the writer of an ID number: one ID always goes to the same writer, which
// writes its lines in file order.
func writerOf(id string, writers int) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % uint32(writers))
}

// atRecordEnd checks that offset, from a checkpoint, is the end of a line of f: the start
// of the file's data or just after a line break.
func atRecordEnd(f *os.File, offset int64) error {
	if offset <= 0 {
		return nil
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, offset-1); err != nil || b[0] != '\n' {
		return fmt.Errorf("offset %d is not the end of a line of the file", offset)
	}
	return nil
}

// headHash is the SHA-256 of the first MiB of f.
func headHash(f *os.File) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, headBytes)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// checkpointPath is where LoadRegistryInto keeps the checkpoint of csvFile whose first MiB
// hashes to head: in dir, or beside the file when dir is "".
func checkpointPath(csvFile, dir, head string) string {
	if dir == "" {
		dir = filepath.Dir(csvFile)
	}
	return filepath.Join(dir, filepath.Base(csvFile)+"."+head[:16]+".checkpoint")
}

func readCheckpoint(path string) (Checkpoint, bool, error) {
	var cp Checkpoint
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return cp, false, nil
	}
	if err != nil {
		return cp, false, fmt.Errorf("checkpoint: %w", err)
	}
	if err := json.Unmarshal(b, &cp); err != nil || cp.Records < 0 || cp.Loaded < 0 || cp.Rejected < 0 || cp.Offset < 0 || cp.Line < 0 {
		// A checkpoint is only ever replaced whole; one that does not parse was not
		// written by a load: say so rather than guess where to resume.
		return cp, false, fmt.Errorf("checkpoint %s is not a load checkpoint (remove it to load from the start)", path)
	}
	return cp, true, nil
}

// writeCheckpoint replaces the checkpoint atomically: a temporary file in the same
// directory, synced, renamed over it, and the directory synced.
func writeCheckpoint(path string, cp Checkpoint) error {
	b, err := json.MarshalIndent(cp, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func removeCheckpoint(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

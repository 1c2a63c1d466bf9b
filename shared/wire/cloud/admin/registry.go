package admin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/tool/registry"
)

// PeopleLoader writes people into a registry, each replacing whoever held its ID number
// (*awsregistry.Registry implements it). Writing a person twice is harmless.
type PeopleLoader interface {
	Load(ctx context.Context, people iter.Seq[match.Person]) (int, error)
}

// LoadOptions tune LoadRegistry.
type LoadOptions struct {
	// CheckpointDir holds the checkpoint; "" puts it beside the input file.
	CheckpointDir string
	// BatchSize is how many people are written between two checkpoints (default 1,000).
	BatchSize int
	// Progress hears after every batch (and once when a resumed load has skipped what
	// was written before).
	Progress func(LoadProgress)
	// Rejected hears of every line that is not a valid person (it never carries the
	// line's values: personal data).
	Rejected func(*registry.LineError)
}

// LoadProgress is where a load is.
type LoadProgress struct {
	// Records are the data records read so far (the header excluded), Skipped the ones a
	// resumed load passed over because an earlier run had written them.
	Records int64
	Skipped int64
	// Loaded people were written, Rejected lines refused, both including earlier runs'.
	Loaded   int64
	Rejected int64
	// Offset is how far into the file the reader is (bytes, read ahead by the CSV
	// reader's buffer); Size the file's size.
	Offset int64
	Size   int64
}

// LoadResult is what a load did in all, earlier interrupted runs included.
type LoadResult struct {
	Records  int64 `json:"records"`
	Loaded   int64 `json:"loaded"`
	Rejected int64 `json:"rejected"`
	// ResumedAt is the number of records a resumed load skipped (0: loaded from the start).
	ResumedAt int64 `json:"resumed_at"`
}

// Checkpoint is a load's place, written after every batch. It names the file by its size
// and the SHA-256 of its first MiB, so a rerun on a changed file starts over instead of
// skipping records it never wrote.
type Checkpoint struct {
	Version  int       `json:"version"`
	File     string    `json:"file"`
	Size     int64     `json:"size"`
	Head     string    `json:"head_sha256"`
	Records  int64     `json:"records"`
	Loaded   int64     `json:"loaded"`
	Rejected int64     `json:"rejected"`
	Updated  time.Time `json:"updated_at"`
}

const (
	checkpointVersion = 1
	headBytes         = 1 << 20
	defaultLoadBatch  = 1000
)

// LoadRegistry loads a registry extract (CSV: id_number,full_name,dob,gender; see
// shared/tool/registry) into the stack's registry table. See LoadRegistryInto.
func (a *Admin) LoadRegistry(ctx context.Context, csvFile string, opt LoadOptions) (LoadResult, error) {
	return LoadRegistryInto(ctx, a.Stack.Registry, csvFile, opt)
}

// LoadRegistryInto streams the extract csvFile into reg in batches of opt.BatchSize
// people, writing a checkpoint after each batch: the number of records read, with the
// file's size and the SHA-256 of its first MiB. A load that is killed or fails is resumed
// by running it again: the records of the checkpoint are read and skipped, not written
// again (the batch in flight when it stopped is written again: puts are idempotent). A
// finished load removes its checkpoint, so loading the same file later loads it again.
//
// The checkpoint is written atomically (a temporary file renamed over it) beside the input
// as "<file>.<hash>.checkpoint", or in opt.CheckpointDir.
//
// This path writes through BatchWriteItem from one machine: right for a province-sized
// extract or a registry update (about a thousand people a second). The national registry
// (100 million people) is to be loaded through S3 and DynamoDB ImportTable into a new
// table instead (a separate issue).
func LoadRegistryInto(ctx context.Context, reg PeopleLoader, csvFile string, opt LoadOptions) (LoadResult, error) {
	var res LoadResult
	batchSize := opt.BatchSize
	if batchSize <= 0 {
		batchSize = defaultLoadBatch
	}
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
		cp = old
	}
	res.ResumedAt, res.Loaded, res.Rejected = cp.Records, cp.Loaded, cp.Rejected
	// Written before the first batch: a directory where no checkpoint can be written is
	// found out now, not after an hour of loading.
	if err := writeCheckpoint(cpPath, cp); err != nil {
		return res, fmt.Errorf("checkpoint: %w (pass a writable checkpoint directory)", err)
	}

	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return res, err
	}
	counter := &countingReader{r: f}
	rd, err := registry.NewReader(counter)
	if err != nil {
		return res, fmt.Errorf("%s: %w", csvFile, err)
	}
	progress := func() {
		if opt.Progress != nil {
			opt.Progress(LoadProgress{Records: res.Records, Skipped: res.ResumedAt, Loaded: res.Loaded,
				Rejected: res.Rejected, Offset: counter.n, Size: fi.Size()})
		}
	}

	batch := make([]match.Person, 0, batchSize)
	flush := func() error {
		if len(batch) > 0 {
			if _, err := reg.Load(ctx, func(yield func(match.Person) bool) {
				for _, p := range batch {
					if !yield(p) {
						return
					}
				}
			}); err != nil {
				return err
			}
		}
		res.Loaded += int64(len(batch))
		batch = batch[:0]
		cp.Records, cp.Loaded, cp.Rejected, cp.Updated = res.Records, res.Loaded, res.Rejected, time.Now().UTC()
		if err := writeCheckpoint(cpPath, cp); err != nil {
			return fmt.Errorf("checkpoint: %w", err)
		}
		progress()
		return nil
	}
	pending := 0 // records read since the last checkpoint
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		p, err := rd.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		var le *registry.LineError
		if err != nil && !errors.As(err, &le) {
			return res, fmt.Errorf("%s: %w", csvFile, err)
		}
		res.Records++
		if res.Records <= res.ResumedAt {
			if res.Records == res.ResumedAt {
				progress()
			}
			continue // written (or reported) by an earlier run
		}
		pending++
		if le != nil {
			res.Rejected++
			if opt.Rejected != nil {
				opt.Rejected(le)
			}
		} else {
			batch = append(batch, p)
		}
		if len(batch) == batchSize || pending >= 4*batchSize {
			if err := flush(); err != nil {
				return res, err
			}
			pending = 0
		}
	}
	if res.Records < res.ResumedAt {
		// The checkpoint says more than the file holds, though its size and head match:
		// the file changed after its first MiB. Nothing is known to be loaded.
		removeCheckpoint(cpPath)
		return res, fmt.Errorf("%s: %d records, the checkpoint %s says %d were read: the file changed; run again to load it from the start",
			csvFile, res.Records, cpPath, res.ResumedAt)
	}
	if err := flush(); err != nil {
		return res, err
	}
	if err := removeCheckpoint(cpPath); err != nil {
		return res, fmt.Errorf("checkpoint: %w", err)
	}
	return res, nil
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
	if err := json.Unmarshal(b, &cp); err != nil || cp.Records < 0 || cp.Loaded < 0 || cp.Rejected < 0 {
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

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

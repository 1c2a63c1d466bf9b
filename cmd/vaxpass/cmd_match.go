package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/tool/progress"
	"github.com/vaxpass/vaxpass/shared/tool/registry"
)

func init() {
	register("match", "match dose records (JSON lines) against a registry extract (CSV), offline", runMatch)
}

// Limits of `vaxpass match` input.
const (
	// maxRecordLine bounds one JSON line; a dose record is well under 2 KiB.
	maxRecordLine = 64 << 10
	// matchBatch is how many lines a worker takes at a time: big enough to amortise the
	// hand-over, small enough to keep memory flat.
	matchBatch = 1024
	// largeInput is the file size from which progress is shown.
	largeInput = 16 << 20
)

// matchLine is one line of `vaxpass match` output (contract).
type matchLine struct {
	SourceID   string            `json:"source_id"`
	Status     match.Status      `json:"status"`
	Reasons    []string          `json:"reasons"`
	Corrected  map[string]string `json:"corrected"`
	Candidates []match.Candidate `json:"candidates,omitempty"`
}

// runMatch is `vaxpass match --registry FILE.csv --records FILE.jsonl`: it loads the
// registry extract in memory, then streams the records, printing one JSON line per record
// in input order. Lines that are not a valid dose record are reported on stderr (line
// number and field) and skipped; the exit code is then 1.
func runMatch(ctx context.Context, e env, args []string) int {
	fs := flag.NewFlagSet("match", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var g globalFlags
	g.register(fs)
	registryPath := fs.String("registry", "", "population-registry extract, CSV with header id_number,full_name,dob,gender (required)")
	recordsPath := fs.String("records", "", "dose records, one JSON object a line; - for stdin (required)")
	candidates := fs.Bool("candidates", true, "add the likeliest registry people to NO_ID, INVALID_ID and NOT_FOUND lines")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "records matched in parallel (output order is kept)")
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "usage: vaxpass match --registry FILE.csv --records FILE.jsonl\n\n"+
			"Prints {\"source_id\",\"status\",\"reasons\",\"corrected\"} per record on stdout, a count per status on stderr.\n"+
			"Exit 0 when every line was a valid record, 1 when some were rejected (reported on stderr), 2 for usage errors.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(e.stderr, "match: unexpected argument %q\n", fs.Arg(0))
		return 2
	case *registryPath == "" || *recordsPath == "":
		fmt.Fprintln(e.stderr, "match: --registry and --records are required")
		fs.Usage()
		return 2
	case *workers < 1:
		fmt.Fprintln(e.stderr, "match: --workers must be 1 or more")
		return 2
	}

	start := time.Now()
	reg, err := loadRegistryFile(e, *registryPath)
	if err != nil {
		fmt.Fprintf(e.stderr, "match: %v\n", err)
		return 1
	}
	loaded := time.Since(start)

	var in io.Reader = e.stdin
	size := int64(-1)
	if *recordsPath != "-" {
		f, err := os.Open(*recordsPath)
		if err != nil {
			fmt.Fprintf(e.stderr, "match: records: %v\n", err)
			return 1
		}
		defer f.Close()
		if fi, err := f.Stat(); err == nil {
			size = fi.Size()
		}
		in = f
	}
	m := match.New(reg)
	if !*candidates {
		m.MaxCandidates = -1
	}
	var bar *progress.Reporter
	if size < 0 || size >= largeInput {
		bar = progress.New(e.stderr, progress.Options{Label: "records", Terminal: e.isTerminal})
	}
	out := bufio.NewWriterSize(e.stdout, 256<<10)
	st, err := matchStream(ctx, in, out, e.stderr, m, *workers, bar)
	if bar != nil {
		bar.Done()
	}
	if ferr := out.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("write output: %w", ferr)
	}

	var sum strings.Builder
	fmt.Fprintf(&sum, "match: %d registry people loaded in %s; %d records matched in %s",
		reg.Len(), loaded.Round(time.Millisecond), st.matched, (time.Since(start) - loaded).Round(time.Millisecond))
	if st.rejected > 0 {
		fmt.Fprintf(&sum, ", %d lines rejected", st.rejected)
	}
	sum.WriteString("\n")
	for _, s := range []match.Status{match.Verified, match.Mismatch, match.NoID, match.InvalidID, match.NotFound, match.Pending} {
		if n := st.byStatus[s]; n > 0 || s != match.Pending {
			fmt.Fprintf(&sum, "  %-10s %d\n", s, n)
		}
	}
	io.WriteString(e.stderr, sum.String())
	if err != nil {
		fmt.Fprintf(e.stderr, "match: %v\n", err)
		return 1
	}
	if st.rejected > 0 {
		return 1
	}
	return 0
}

// loadRegistryFile reads a CSV extract into memory; bad lines are reported on stderr.
func loadRegistryFile(e env, path string) (*registry.Memory, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	defer f.Close()
	var counter registry.Counter // an interface: stays nil without a display
	if fi, err := f.Stat(); err == nil && fi.Size() >= largeInput {
		bar := progress.New(e.stderr, progress.Options{Label: "registry people", Terminal: e.isTerminal})
		defer bar.Done()
		counter = bar
	}
	rejects := bufio.NewWriter(e.stderr)
	defer rejects.Flush()
	reg, st, err := registry.LoadMemory(f, func(err error) {
		fmt.Fprintf(rejects, "match: registry %s: %v\n", path, err)
	}, counter)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", path, err)
	}
	if st.Rejected > 0 {
		fmt.Fprintf(rejects, "match: registry %s: %d lines rejected, %d people loaded\n", path, st.Rejected, st.Loaded)
	}
	return reg, nil
}

// matchStats is what matchStream counted.
type matchStats struct {
	matched, rejected int
	byStatus          map[match.Status]int
}

// lineBatch is a run of consecutive input lines; seq orders the batches.
type lineBatch struct {
	seq       int
	firstLine int
	data      []byte   // the lines' bytes
	lines     [][]byte // slices of data, one per line (nil for an over-long line)
}

// batchResult is a batch's output, written in seq order.
type batchResult struct {
	seq      int
	out      []byte // JSON lines for stdout
	errs     []byte // messages for stderr
	matched  int
	rejected int
	byStatus map[match.Status]int
	err      error // a registry failure: ends the run
}

// matchStream reads JSON lines from in and writes results to out in input order, with
// `workers` goroutines doing the decoding, validation and matching.
func matchStream(ctx context.Context, in io.Reader, out, errOut io.Writer, m *match.Matcher, workers int, bar *progress.Reporter) (matchStats, error) {
	st := matchStats{byStatus: map[match.Status]int{}}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	batches := make(chan lineBatch, workers*2)
	results := make(chan batchResult, workers*2)
	readDone := make(chan error, 1)
	go func() {
		defer close(batches)
		readDone <- readBatches(ctx, in, batches)
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			today := time.Now()
			for b := range batches {
				select {
				case results <- matchBatchLines(m, b, today):
				case <-ctx.Done():
					return
				}
			}
		})
	}
	go func() {
		wg.Wait()
		close(results)
	}()

	// Reorder: results arrive in any order, output must follow the input.
	pending := map[int]batchResult{}
	next := 0
	var err error
	for r := range results {
		pending[r.seq] = r
		for {
			r, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			if err != nil {
				continue
			}
			if r.err != nil {
				err = r.err
				cancel()
				continue
			}
			errOut.Write(r.errs)
			if _, werr := out.Write(r.out); werr != nil {
				err = fmt.Errorf("write output: %w", werr)
				cancel()
				continue
			}
			st.matched += r.matched
			st.rejected += r.rejected
			for s, n := range r.byStatus {
				st.byStatus[s] += n
			}
			if bar != nil {
				bar.Add(int64(r.matched + r.rejected))
			}
		}
	}
	if readErr := <-readDone; err == nil && readErr != nil {
		err = readErr
	}
	if err == nil {
		err = ctx.Err()
	}
	return st, err
}

// readBatches splits in into batches of lines. A line longer than maxRecordLine is passed
// on as nil (reported as rejected) and skipped to its end.
func readBatches(ctx context.Context, in io.Reader, batches chan<- lineBatch) error {
	br := bufio.NewReaderSize(in, maxRecordLine)
	lineNo := 0
	for seq := 0; ; seq++ {
		b := lineBatch{seq: seq, firstLine: lineNo + 1}
		var ends []int // end offset in data of each line; -1 for an over-long one
		var eof bool
		for len(ends) < matchBatch && !eof {
			line, err := br.ReadSlice('\n')
			switch {
			case errors.Is(err, bufio.ErrBufferFull):
				for errors.Is(err, bufio.ErrBufferFull) { // skip the rest of the line
					_, err = br.ReadSlice('\n')
				}
				if err != nil && !errors.Is(err, io.EOF) {
					return fmt.Errorf("read records: %w", err)
				}
				eof = err != nil
				lineNo++
				ends = append(ends, -1)
				continue
			case errors.Is(err, io.EOF):
				eof = true
				if len(line) == 0 {
					continue
				}
			case err != nil:
				return fmt.Errorf("read records: %w", err)
			}
			lineNo++
			b.data = append(b.data, line...)
			ends = append(ends, len(b.data))
		}
		if len(ends) > 0 {
			start := 0
			b.lines = make([][]byte, len(ends))
			for i, end := range ends {
				if end < 0 {
					continue
				}
				b.lines[i] = b.data[start:end]
				start = end
			}
			select {
			case batches <- b:
			case <-ctx.Done():
				return nil
			}
		}
		if eof {
			return nil
		}
	}
}

// matchBatchLines decodes, validates and matches the lines of one batch.
func matchBatchLines(m *match.Matcher, b lineBatch, today time.Time) batchResult {
	res := batchResult{seq: b.seq, byStatus: map[match.Status]int{}}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	for i, line := range b.lines {
		lineNo := b.firstLine + i
		if line == nil {
			res.rejected++
			res.errs = fmt.Appendf(res.errs, "match: records line %d: longer than %d bytes\n", lineNo, maxRecordLine)
			continue
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue // blank lines carry nothing
		}
		r, problems := decodeRecord(line, today)
		if len(problems) > 0 {
			res.rejected++
			for _, p := range problems {
				res.errs = fmt.Appendf(res.errs, "match: records line %d: %s\n", lineNo, p)
			}
			continue
		}
		result, err := m.Match(r)
		if err != nil {
			res.err = fmt.Errorf("records line %d: %w", lineNo, err)
			return res
		}
		corrected := result.Corrected
		if corrected == nil {
			corrected = map[string]string{}
		}
		if err := enc.Encode(matchLine{SourceID: r.SourceID, Status: result.Status, Reasons: result.Reasons,
			Corrected: corrected, Candidates: result.Candidates}); err != nil {
			res.err = fmt.Errorf("records line %d: encode result: %w", lineNo, err)
			return res
		}
		res.matched++
		res.byStatus[result.Status]++
	}
	res.out = out.Bytes()
	return res
}

// decodeRecord parses one JSON line strictly (one object, no unknown fields) and checks
// it as the API would. It returns the record as typed (not normalised: the matcher
// reports what it corrected relative to what was typed) or the problems found, each
// naming the field.
func decodeRecord(line []byte, today time.Time) (dose.Record, []string) {
	var r dose.Record
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, []string{describeJSONError(err)}
	}
	if dec.More() {
		return r, []string{"invalid JSON: more than one value on the line"}
	}
	checked := r
	checked.Normalize()
	var problems []string
	for _, fe := range checked.Validate(today) {
		problems = append(problems, fmt.Sprintf("%s: %s", fe.Field, fe.Message))
	}
	return r, problems
}

// describeJSONError names the field of a decoding error where encoding/json tells it.
func describeJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return fmt.Sprintf("%s: must be a JSON %s, not %s", typeErr.Field, typeErr.Type.Kind(), typeErr.Value)
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("invalid JSON at byte %d: %v", syntaxErr.Offset, syntaxErr)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return strings.TrimPrefix(err.Error(), "json: unknown field ") + ": unknown field"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "invalid JSON: truncated"
	}
	return "invalid JSON: " + err.Error()
}

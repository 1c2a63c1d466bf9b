package synth

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// File names WriteDir uses.
const (
	RegistryFile = "registry.csv"
	RecordsFile  = "records.jsonl"
	TruthFile    = "truth.jsonl"
)

// WriteDir generates into dir (created if missing): RegistryFile, RecordsFile, TruthFile.
func WriteDir(ctx context.Context, dir string, cfg Config, progress Counter) (Summary, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Summary{}, fmt.Errorf("create output directory: %w", err)
	}
	var files []*os.File
	var writers []*bufio.Writer
	open := func(name string) (io.Writer, error) {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", name, err)
		}
		files = append(files, f)
		w := bufio.NewWriterSize(f, 1<<20)
		writers = append(writers, w)
		return w, nil
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	var out Output
	var err error
	if out.Registry, err = open(RegistryFile); err != nil {
		return Summary{}, err
	}
	if out.Records, err = open(RecordsFile); err != nil {
		return Summary{}, err
	}
	if out.Truth, err = open(TruthFile); err != nil {
		return Summary{}, err
	}
	sum, err := Generate(ctx, cfg, out, progress)
	if err != nil {
		return sum, err
	}
	for i, w := range writers {
		if err := w.Flush(); err != nil {
			return sum, fmt.Errorf("write %s: %w", files[i].Name(), err)
		}
		if err := files[i].Close(); err != nil {
			return sum, fmt.Errorf("close %s: %w", files[i].Name(), err)
		}
	}
	files = nil
	return sum, nil
}

// ReadTruth calls fn for each line of a ground-truth file, in order; it stops at the first
// error fn returns.
func ReadTruth(r io.Reader, fn func(Truth) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		var t Truth
		if err := json.Unmarshal(sc.Bytes(), &t); err != nil {
			return fmt.Errorf("truth line %d: %w", line, err)
		}
		if err := fn(t); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("truth line %d: %w", line+1, err)
	}
	return nil
}

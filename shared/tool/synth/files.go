package synth

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// File names WriteDir uses.
const (
	RegistryFile = "registry.csv"
	RecordsFile  = "records.jsonl"
	TruthFile    = "truth.jsonl"
)

// Modes of what WriteDir creates: the files hold names, dates of birth and ID numbers
// -- synthetic, but shaped like personal data and handled like it -- so only their owner
// reads them.
const (
	FileMode fs.FileMode = 0o600
	DirMode  fs.FileMode = 0o700
)

// WriteDir generates into dir (created with DirMode if missing, as are its missing
// parents): RegistryFile, RecordsFile, TruthFile, each with FileMode, also when it
// existed before with a wider one.
func WriteDir(ctx context.Context, dir string, cfg Config, progress Counter) (Summary, error) {
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return Summary{}, fmt.Errorf("create output directory: %w", err)
	}
	var files []*os.File
	var writers []*bufio.Writer
	open := func(name string) (io.Writer, error) {
		f, err := CreatePrivate(filepath.Join(dir, name))
		if err != nil {
			return nil, err
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

// CreatePrivate creates or truncates the file at path for writing, with FileMode: an
// existing file is narrowed to it before anything is written (opening keeps an existing
// file's mode).
func CreatePrivate(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, FileMode)
	if err != nil {
		return nil, err // an *fs.PathError: it names the operation and the file
	}
	if err := f.Chmod(FileMode); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
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

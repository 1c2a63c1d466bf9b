// Package pdftool reads PDFs back in tests with a real renderer (Poppler's pdftoppm and
// pdftotext, Debian's poppler-utils, installed by .ci/setup): what a printer or a phone
// shows, not what the writing library believes it wrote.
package pdftool

import (
	"bytes"
	"context"
	"image"
	_ "image/png" // pdftoppm -png
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// find returns the tool's path. Without it the test is skipped, or fails when CI=true.
func find(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if v := os.Getenv("CI"); v != "" && v != "false" && v != "0" {
			t.Fatalf("%s not found (Debian poppler-utils): a PDF test must run in CI", name)
		}
		t.Skipf("%s not found (install Debian's poppler-utils)", name)
	}
	return p
}

func run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, find(t, name), args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v: %s", name, err, stderr.String())
	}
	return out
}

func write(t testing.TB, pdf []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "in.pdf")
	if err := os.WriteFile(p, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Pages rasterizes every page of pdf at dpi.
func Pages(t testing.TB, pdf []byte, dpi int) []image.Image {
	t.Helper()
	in := write(t, pdf)
	prefix := filepath.Join(filepath.Dir(in), "page")
	run(t, "pdftoppm", "-r", itoa(dpi), "-png", in, prefix)
	matches, _ := filepath.Glob(prefix + "*.png")
	var out []image.Image
	for _, m := range matches {
		f, err := os.Open(m)
		if err != nil {
			t.Fatal(err)
		}
		img, _, err := image.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		out = append(out, img)
	}
	return out
}

// Text is the text of pdf as pdftotext extracts it (UTF-8, layout kept).
func Text(t testing.TB, pdf []byte) string {
	t.Helper()
	return string(run(t, "pdftotext", "-layout", "-enc", "UTF-8", write(t, pdf), "-"))
}

// Info is pdfinfo's report (pages, page size).
func Info(t testing.TB, pdf []byte) string {
	t.Helper()
	return string(run(t, "pdfinfo", write(t, pdf)))
}

func itoa(n int) string { return strconv.Itoa(n) }

package browser

import (
	"bytes"
	"errors"
	"image/jpeg"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

func TestLocate(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	onPath := map[string]string{}
	lookPath := func(name string) (string, error) {
		if p, ok := onPath[name]; ok {
			return p, nil
		}
		return "", errors.New("not on PATH")
	}

	if _, err := locate(getenv, lookPath); err == nil || !strings.Contains(err.Error(), EnvChromium) {
		t.Errorf("nothing installed: %v; want an error naming %s", err, EnvChromium)
	}
	onPath["google-chrome"] = "/opt/google/chrome"
	onPath["chromium-browser"] = "/usr/bin/chromium-browser"
	if p, err := locate(getenv, lookPath); err != nil || p != "/usr/bin/chromium-browser" {
		t.Errorf("two on PATH: %q, %v; want the first of the list", p, err)
	}
	env[EnvChromium] = "/custom/chrome"
	if p, err := locate(getenv, lookPath); err != nil || p != "/custom/chrome" {
		t.Errorf("%s set: %q, %v", EnvChromium, p, err)
	}
}

func TestInCI(t *testing.T) {
	for v, want := range map[string]bool{"": false, "true": true, "1": true, "false": false, "0": false, "yes": true} {
		if got := inCI(v); got != want {
			t.Errorf("CI=%q: in CI %v, want %v", v, got, want)
		}
	}
}

// TestBrowser drives a small page: steps, values, console errors, both screenshots.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(`<!doctype html><title>kit</title><p id="p">hello</p>` +
			`<button id="b" onclick="document.getElementById('p').textContent='clicked';console.error('boom')">b</button>`))
	}))
	t.Cleanup(srv.Close)
	ctx := New(t, Options{Width: 800, Height: 600})
	problems := ConsoleProblems(ctx)
	Do(t, ctx, "open", chromedp.Navigate(srv.URL), chromedp.WaitVisible(chromedp.ID("p")))
	if w := Run(t, ctx, "window width", chromedp.Evaluate[int](`window.innerWidth`)); w != 800 {
		t.Errorf("window width %d, want 800", w)
	}
	Do(t, ctx, "click", chromedp.Click(chromedp.ID("b")))
	if got := Run(t, ctx, "read", chromedp.TextContent(chromedp.ID("p"))); got != "clicked" {
		t.Errorf("text after the click %q", got)
	}
	dir := t.TempDir()
	Screenshot(t, ctx, dir, "page.png")
	Screenshot(t, ctx, dir, "page.jpg")
	ViewportShot(t, ctx, dir, "view.png")
	for name, decode := range map[string]func([]byte) error{
		"page.png": func(b []byte) error { _, err := png.Decode(bytes.NewReader(b)); return err },
		"view.png": func(b []byte) error { _, err := png.Decode(bytes.NewReader(b)); return err },
		"page.jpg": func(b []byte) error { _, err := jpeg.Decode(bytes.NewReader(b)); return err },
	} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := decode(b); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The console event comes on its own: give it a moment.
	for deadline := time.Now().Add(5 * time.Second); len(problems()) == 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if p := problems(); len(p) != 1 || !strings.Contains(p[0], "boom") {
		t.Errorf("console problems %q, want the one error", p)
	}
}

func TestArtifactDir(t *testing.T) {
	base := t.TempDir()
	t.Setenv(EnvArtifacts, base)
	if got := ArtifactDir(t, "web"); got != filepath.Join(base, "web") {
		t.Errorf("ArtifactDir = %s", got)
	}
	if fi, err := os.Stat(filepath.Join(base, "web")); err != nil || !fi.IsDir() {
		t.Errorf("not created: %v", err)
	}
}

// Package browser drives headless Chromium for the page tests (chromedp): one launcher,
// steps bounded so that a page that never shows what a step waits for fails quickly,
// console errors collected, screenshots saved as artefacts.
//
//	ctx := browser.New(t, browser.Options{})
//	browser.Do(t, ctx, "open the page", chromedp.Navigate(url), chromedp.WaitVisible(chromedp.ID("form")))
//	browser.Screenshot(t, ctx, browser.ArtifactDir(t, "web"), "form.png")
//
// The binary is $VAXPASS_CHROMIUM or the first Chromium or Chrome on PATH. Without one the
// test is skipped, saying so -- unless $CI says it runs in CI, where a missing browser
// is a failure: the page tests must not pass there by not running.
package browser

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vaxpass/vaxpass/shared/testkit/cli"
)

// Environment variables read here.
const (
	// EnvChromium names the browser binary.
	EnvChromium = "VAXPASS_CHROMIUM"
	// EnvArtifacts is where screenshots go (ArtifactDir).
	EnvArtifacts = "VAXPASS_ARTIFACTS"
	// EnvCI set to true (as CI services set it) makes a missing browser a failure.
	EnvCI = "CI"
)

// names are the binaries looked for on PATH, in order.
var names = []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"}

// StepTimeout bounds one step (Do, Run); it is not a speed check.
const StepTimeout = 30 * time.Second

// Find returns the browser binary. Without one it skips the test, or fails it in CI.
func Find(t testing.TB) string {
	t.Helper()
	p, err := locate(os.Getenv, exec.LookPath)
	if err != nil {
		if inCI(os.Getenv(EnvCI)) {
			t.Fatalf("%v; %s=%s: a browser test must run in CI", err, EnvCI, os.Getenv(EnvCI))
		}
		t.Skipf("%v; the browser test needs one", err)
	}
	return p
}

func locate(getenv func(string) string, lookPath func(string) (string, error)) (string, error) {
	if p := getenv(EnvChromium); p != "" {
		return p, nil
	}
	for _, name := range names {
		if p, err := lookPath(name); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no chromium binary found (install Debian's chromium, or set %s)", EnvChromium)
}

// inCI reads $CI as CI services set it ("true"); an unparsable value counts as set.
func inCI(v string) bool {
	if v == "" {
		return false
	}
	b, err := strconv.ParseBool(v)
	return b || err != nil
}

// Options of a browser.
type Options struct {
	// Width and Height of the window (default 1280 x 900).
	Width, Height int
	// Lang is the browser's language (default vi-VN, the citizens').
	Lang string
}

// New starts headless Chromium (Find) with a fresh profile and returns its chromedp
// context; the browser is closed when the test ends, and after 3 minutes whatever happens
// (a bound on a hung browser).
func New(t testing.TB, opt Options) context.Context {
	t.Helper()
	chromium := Find(t)
	if opt.Width == 0 || opt.Height == 0 {
		opt.Width, opt.Height = 1280, 900
	}
	if opt.Lang == "" {
		opt.Lang = "vi-VN"
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("lang", opt.Lang),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(opt.Width, opt.Height),
	}
	ctx, cancelTimeout := context.WithTimeout(context.Background(), 3*time.Minute)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	browserCtx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc(); cancelTimeout() })
	// Start the browser on the long-lived context, so that a step's timeout ends the
	// step, not the browser.
	if err := chromedp.Do(browserCtx); err != nil {
		t.Fatalf("start %s: %v", chromium, err)
	}
	return browserCtx
}

// Do runs actions as one step of StepTimeout at most, failing the test with the step's
// name.
func Do(t testing.TB, ctx context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, StepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", step, err)
	}
}

// Run runs an action that returns a value as one step, like Do.
func Run[T any](t testing.TB, ctx context.Context, step string, action chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, StepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, action)
	if err != nil {
		t.Fatalf("%s: %v", step, err)
	}
	return v
}

// ConsoleProblems collects the page's console errors and exceptions from now on, apart
// from the browser's own line for each non-2xx answer (tests provoke those on purpose);
// the function returned lists them so far.
func ConsoleProblems(ctx context.Context) func() []string {
	var mu sync.Mutex
	var problems []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Source == "network" || (m.Type != chromedp.ConsoleError && m.Type != chromedp.ConsoleException) {
				continue
			}
			mu.Lock()
			problems = append(problems, fmt.Sprintf("%s %s: %s", m.Type, m.Source, m.Text))
			mu.Unlock()
		}
	}()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), problems...)
	}
}

// ArtifactDir is where a test's screenshots go: $VAXPASS_ARTIFACTS/<sub>, else
// artifacts/<sub> in the module (ignored by git), so that a local run leaves them to look at.
func ArtifactDir(t testing.TB, sub string) string {
	t.Helper()
	base := os.Getenv(EnvArtifacts)
	if base == "" {
		base = filepath.Join(cli.ModuleRoot(t), "artifacts")
	}
	dir := filepath.Join(base, sub)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Screenshot saves the whole page as dir/name: PNG, or JPEG (quality 90) when the name
// ends in .jpg or .jpeg.
func Screenshot(t testing.TB, ctx context.Context, dir, name string) {
	t.Helper()
	quality := 100
	if ext := strings.ToLower(filepath.Ext(name)); ext == ".jpg" || ext == ".jpeg" {
		quality = 90
	}
	save(t, dir, name, Run(t, ctx, "screenshot "+name, chromedp.FullScreenshot(quality)))
}

// ViewportShot saves what the window shows now (a phone's screen, not the whole page) as
// dir/name, a PNG.
func ViewportShot(t testing.TB, ctx context.Context, dir, name string) {
	t.Helper()
	save(t, dir, name, Run(t, ctx, "screenshot "+name, chromedp.CaptureScreenshot()))
}

func save(t testing.TB, dir, name string, img []byte) {
	t.Helper()
	if len(img) == 0 {
		t.Fatalf("screenshot %s: empty image", name)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", p)
}

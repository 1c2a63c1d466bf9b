// Package server starts a vaxpass system for a test, in one of two ways:
//
//   - Open: in process. local.OpenLocal on a data directory, served by Local.Run on a free
//     port of 127.0.0.1 (HTTP front and pumps, as `vaxpass serve`), or with FrontOnly the
//     HTTP front alone while the test starts the pumps it wants (System.Go). The test
//     holds the *local.Local: its store, its clock, its keys.
//   - Spawn: the real `vaxpass serve` binary (shared/testkit/cli) as a subprocess, for
//     the tests that kill it (Process.Kill is a SIGKILL) or drive it as a user does.
//
// Both give a Client of the HTTP API. ScratchDir places data directories on tmpfs when
// the machine has room.
package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/wire/local"
)

// Options configure an in-process system.
type Options struct {
	// Options are the system's (DataDir "": a fresh temporary directory).
	local.Options
	// Demo sets up the demo (local.Local.SetupDemo, seed DemoSeed or 1): a generated
	// registry and the demo facility (System.Demo; its key is System.FacilityKey unless
	// Facility is set).
	Demo     bool
	DemoSeed uint64
	// Facility, when set, adds a facility of that ID (named "Test site <ID>"); its key is
	// then System.FacilityKey (the demo's stays in System.Demo.APIKey).
	Facility string
	// OpsActor, when set, makes an ops key for that actor the way `vaxpass ops key` does
	// (its hash in the data directory's key file): System.OpsKey.
	OpsActor string
	// NoSync drops the fsync of every commit: a scratch database, much faster.
	NoSync bool
	// FrontOnly serves the HTTP front alone: no pump, no scheduled work, until the test
	// starts them (System.Go(l.RunMatcher) ...). Uploaded records stay PENDING until then.
	FrontOnly bool
}

// System is an in-process system serving HTTP on 127.0.0.1.
type System struct {
	URL         string // http://127.0.0.1:port
	Addr        string // 127.0.0.1:port, for raw connections
	Local       *local.Local
	Data        string
	Demo        local.Demo // set with Options.Demo
	FacilityKey string     // Options.Facility's, else the demo facility's
	OpsKey      string     // Options.OpsActor's

	t      testing.TB
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	errs   []error
	front  *httptest.Server // FrontOnly
	closed bool
}

// Open opens the system, sets it up as opt says and serves it; everything stops when the
// test ends (or at Close), and an error of the server or of a background task fails the
// test then.
func Open(t testing.TB, opt Options) *System {
	t.Helper()
	if opt.DataDir == "" {
		opt.DataDir = t.TempDir()
	}
	l, err := local.OpenLocal(opt.Options)
	if err != nil {
		t.Fatalf("open the system on %s: %v", opt.DataDir, err)
	}
	s := &System{Local: l, Data: opt.DataDir, t: t}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	t.Cleanup(s.Close)
	if opt.NoSync {
		l.DB.Bolt().NoSync = true
	}
	if err := s.setUp(opt); err != nil {
		t.Fatal(err)
	}
	if opt.FrontOnly {
		s.front = httptest.NewServer(l.HTTPHandler())
		s.URL, s.Addr = s.front.URL, s.front.Listener.Addr().String()
		return s
	}
	ready := make(chan net.Addr, 1)
	s.Go("serve", func(ctx context.Context) error {
		return l.Run(ctx, "127.0.0.1:0", func(a net.Addr) { ready <- a })
	})
	select {
	case a := <-ready:
		s.Addr = a.String()
		s.URL = "http://" + s.Addr
	case <-s.ctx.Done():
		s.Close()
		t.FailNow()
	}
	return s
}

func (s *System) setUp(opt Options) error {
	ctx := context.Background()
	if opt.Demo {
		seed := opt.DemoSeed
		if seed == 0 {
			seed = 1
		}
		d, err := s.Local.SetupDemo(ctx, seed)
		if err != nil {
			return fmt.Errorf("demo set-up: %w", err)
		}
		s.Demo, s.FacilityKey = d, d.APIKey
	}
	if opt.Facility != "" {
		key, err := s.Local.AddFacility(ctx, opt.Facility, "Test site "+opt.Facility)
		if err != nil {
			return fmt.Errorf("add facility %s: %w", opt.Facility, err)
		}
		s.FacilityKey = key
	}
	if opt.OpsActor != "" {
		now := opt.Now
		if now == nil {
			now = time.Now
		}
		key, err := local.NewOpsKeyFile(opt.DataDir, now, rand.Reader).Create(opt.OpsActor)
		if err != nil {
			return fmt.Errorf("ops key: %w", err)
		}
		s.OpsKey = key
	}
	return nil
}

// Go runs f in the background until the system closes (a pump, reprocessing, ...). An
// error other than the end of its context fails the test and stops the system.
func (s *System) Go(name string, f func(ctx context.Context) error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := f(s.ctx); err != nil && !errors.Is(err, context.Canceled) {
			s.mu.Lock()
			s.errs = append(s.errs, fmt.Errorf("%s: %w", name, err))
			s.mu.Unlock()
			s.cancel()
		}
	}()
}

// Client returns a client of the system's API holding key ("" for none).
func (s *System) Client(key string) *Client { return NewClient(s.URL, key) }

// Close stops serving and the background work, waits for them, reports their errors and
// closes the database (so that the data directory can be opened again). It runs at the
// end of the test anyway; a second call does nothing.
func (s *System) Close() {
	if s.closed {
		return
	}
	s.closed = true
	if s.front != nil {
		s.front.Close()
	}
	s.cancel()
	s.wg.Wait()
	for _, err := range s.errs {
		s.t.Errorf("system: %v", err)
	}
	if err := s.Local.Close(); err != nil {
		s.t.Errorf("close the system: %v", err)
	}
}

// Package routes are the HTTP API's route groups over the one wiring (wire.System): the
// ops group and the router here, the facility and public groups in routes/facility and
// routes/public. The embedded server registers all of them on one router; on AWS each API
// function registers its own (template.yaml routes each path to one function), so the
// union is the same API: tests compare both with openapi.yaml. Packages of their own, so
// that a function links only the routes it serves (and none, the matcher and central
// signing).
package routes

import (
	"fmt"

	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/edge/httpapi"
	"github.com/vaxpass/vaxpass/shared/stage/report"
	"github.com/vaxpass/vaxpass/shared/wire"
	opsweb "github.com/vaxpass/vaxpass/web/ops"
)

// Group registers a group of routes.
type Group func(r *apigw.Router) error

// Router is a router with the groups registered, guarded by the per-route limits (Limits).
func Router(groups ...Group) (*apigw.Router, error) {
	r := apigw.NewRouter()
	limits, err := guard()
	if err != nil {
		return nil, err
	}
	r.SetGuard(limits)
	for _, g := range groups {
		if err := g(r); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Auth is the one authenticator of every keyed route: the API keys of every role
// (wire.Ports.AccessKeys).
func Auth(s *wire.System) (*httpapi.Auth, error) {
	p := s.Ports()
	if p.AccessKeys == nil {
		return nil, fmt.Errorf("%w: AccessKeys", wire.ErrNoPort)
	}
	return &httpapi.Auth{Keys: p.AccessKeys, Events: p.SecurityEvents, Log: p.Log}, nil
}

// Reports is the citizen's report use case: reports kept in wire.Ports.Reports, counted
// per ID number (report.NewLimiter) in the lookup's attempt store.
func Reports(s *wire.System) (*report.Service, error) {
	p := s.Ports()
	if p.Reports == nil || p.LookupAttempts == nil {
		return nil, fmt.Errorf("%w: Reports and LookupAttempts (citizens' reports and their limit per ID number)", wire.ErrNoPort)
	}
	limit := report.NewLimiter(p.LookupAttempts, p.LookupSecret, p.Now)
	limit.Log = p.Log
	return &report.Service{Store: p.Reports, Facilities: p.Store, Lookup: s.Lookup(), Limit: limit, Now: p.Now, Rand: p.Rand}, nil
}

// OpsAuth guards the ops routes: keys of role ops.
func OpsAuth(s *wire.System) (*httpapi.OpsAuth, error) {
	a, err := Auth(s)
	if err != nil {
		return nil, err
	}
	return &httpapi.OpsAuth{Auth: a}, nil
}

// Ops is the ops API (key of role ops): revocations, the audit trail, reprocessing, dead letters
// and the dashboard's numbers. runs are the reprocessing runs: wire.System.ReprocessRuns
// where the server does the work itself (the embedded backend), a remote control of the
// ops worker function on AWS (so the API function links none of the stages).
func Ops(s *wire.System, runs httpapi.ReprocessRuns) Group {
	return func(r *apigw.Router) error {
		p := s.Ports()
		auth, err := OpsAuth(s)
		if err != nil {
			return err
		}
		rev, err := s.Revoker()
		if err != nil {
			return err
		}
		if runs == nil {
			return fmt.Errorf("%w: reprocessing runs", wire.ErrNoPort)
		}
		switch {
		case p.Audit == nil:
			return fmt.Errorf("%w: Audit", wire.ErrNoPort)
		case p.Stats == nil:
			return fmt.Errorf("%w: Stats", wire.ErrNoPort)
		}
		dead, err := s.DeadLetters()
		if err != nil {
			return err
		}
		(&httpapi.OpsCerts{Auth: auth, Revoker: rev, Audit: p.Audit, Log: p.Log}).Routes(r)
		(&httpapi.OpsStats{Auth: auth, Stats: p.Stats, Log: p.Log}).Routes(r)
		(&httpapi.OpsReprocess{Auth: auth, Runs: runs, DeadLetters: dead, Log: p.Log}).Routes(r)
		return nil
	}
}

// Page routes: the citizen's lookup page and the ops dashboard, static files embedded in
// the binary, served through the API like every other route.
const (
	RoutePage   = "GET /"
	RouteStatic = "GET /static/{file}"
	// RouteReportPage is the citizen's report page.
	RouteReportPage = "GET /report"
	RouteOpsPage    = "GET /ops"
	RouteOpsStatic  = "GET /ops/static/{file}"
)

// OpsPages serve the ops dashboard (its data comes from the ops API, with the key the page
// asks for).
func OpsPages(r *apigw.Router) error {
	h := HTTPRoute(opsweb.Handler())
	r.Handle(RouteOpsPage, h)
	r.Handle(RouteOpsStatic, h)
	return nil
}

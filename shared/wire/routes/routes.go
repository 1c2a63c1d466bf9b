// Package routes are the HTTP API's route groups over the one wiring (wire.System). The
// embedded server registers all of them on one router; on AWS each API function registers
// its own (template.yaml routes each path to one function), so the union is the same API:
// tests compare both with openapi.yaml. It is a package of its own so that a function
// without HTTP routes (the matcher, central signing) links none of it.
package routes

import (
	"context"
	"fmt"

	"github.com/vaxpass/vaxpass/shared/edge/api"
	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/hc1/qr"
	"github.com/vaxpass/vaxpass/shared/stage/ingest"
	"github.com/vaxpass/vaxpass/shared/wire"
	"github.com/vaxpass/vaxpass/web"
	opsweb "github.com/vaxpass/vaxpass/web/ops"
)

// Group registers a group of routes.
type Group func(r *apigw.Router) error

// Router is a router with the groups registered.
func Router(groups ...Group) (*apigw.Router, error) {
	r := apigw.NewRouter()
	for _, g := range groups {
		if err := g(r); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// All is every group: the embedded server is every function at once.
func All(s *wire.System) []Group {
	return []Group{Facility(s), Public(s), Ops(s), LookupPages, OpsPages}
}

// Facility is the facility API (facility API key): uploads, imports, a dose's status,
// worklists, corrections and POST /v1/signatures.
func Facility(s *wire.System) Group {
	return func(r *apigw.Router) error {
		p := s.Ports()
		ing := &ingest.Service{Doses: p.Store, Now: p.Now}
		(&api.Facility{
			Facilities: p.Store, Ingest: ing, Doses: p.Store, Certs: p.Store,
			Signer: s.FacilitySigning(), Worklists: Worklists{Now: p.Now}, Now: p.Now, Log: p.Log,
		}).Routes(r)
		if p.Audit == nil {
			return fmt.Errorf("%w: Audit (corrections are audited)", wire.ErrNoPort)
		}
		(&api.Corrections{Facilities: p.Store, Doses: p.Store, Ingest: ing, Audit: p.Audit, Now: p.Now, Log: p.Log}).Routes(r)
		return nil
	}
}

// Public is the public API (no key, rate limited): lookup, QR, verify, the trust list and
// the revocation list.
func Public(s *wire.System) Group {
	return func(r *apigw.Router) error {
		p := s.Ports()
		ver, err := s.Verifier()
		if err != nil {
			return err
		}
		lim, err := apigw.NewLimiter(p.LookupRate, p.Now)
		if err != nil {
			return err
		}
		if p.TrustListJSON == nil {
			return fmt.Errorf("%w: TrustListJSON", wire.ErrNoPort)
		}
		pub, err := s.Publisher()
		if err != nil {
			return err
		}
		(&api.Public{
			Lookup: s.Lookup(), Verifier: ver, TrustList: p.TrustListJSON,
			RenderQR: func(hc1 string) ([]byte, error) { return qr.PNG(hc1) },
			Limiter:  lim, Now: p.Now, Log: p.Log,
		}).Routes(r)
		(&api.RevocationList{Log: p.Log, Revocations: func(ctx context.Context) ([]byte, error) {
			b, _, err := pub.Current(ctx)
			return b, err
		}}).Routes(r)
		return nil
	}
}

// OpsAuth guards the ops routes with the ops keys.
func OpsAuth(s *wire.System) (*api.OpsAuth, error) {
	p := s.Ports()
	if p.OpsKeys == nil {
		return nil, fmt.Errorf("%w: OpsKeys", wire.ErrNoPort)
	}
	return &api.OpsAuth{Keys: p.OpsKeys, Log: p.Log}, nil
}

// Ops is the ops API (ops key): revocations, the audit trail, reprocessing, dead letters
// and the dashboard's numbers.
func Ops(s *wire.System) Group {
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
		runs, err := s.ReprocessRuns()
		if err != nil {
			return err
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
		(&api.OpsCerts{Auth: auth, Revoker: rev, Audit: p.Audit, Log: p.Log}).Routes(r)
		(&api.OpsStats{Auth: auth, Stats: p.Stats, Log: p.Log}).Routes(r)
		(&api.OpsReprocess{Auth: auth, Runs: runs, DeadLetters: dead, Log: p.Log}).Routes(r)
		return nil
	}
}

// Page routes: the citizen's lookup page and the ops dashboard, static files embedded in
// the binary, served through the API like every other route.
const (
	RoutePage      = "GET /"
	RouteStatic    = "GET /static/{file}"
	RouteOpsPage   = "GET /ops"
	RouteOpsStatic = "GET /ops/static/{file}"
)

// LookupPages serve the citizen's lookup page.
func LookupPages(r *apigw.Router) error {
	h := HTTPRoute(web.Handler())
	r.Handle(RoutePage, h)
	r.Handle(RouteStatic, h)
	return nil
}

// OpsPages serve the ops dashboard (its data comes from the ops API, with the key the page
// asks for).
func OpsPages(r *apigw.Router) error {
	h := HTTPRoute(opsweb.Handler())
	r.Handle(RouteOpsPage, h)
	r.Handle(RouteOpsStatic, h)
	return nil
}

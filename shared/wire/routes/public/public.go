// Package public is the public API's route group (no key, rate limited) and the citizen's
// lookup page.
package public

import (
	"context"
	"fmt"

	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/edge/httpapi"
	"github.com/vaxpass/vaxpass/shared/edge/passportpage"
	"github.com/vaxpass/vaxpass/shared/hc1/qr"
	"github.com/vaxpass/vaxpass/shared/stage/lookup"
	"github.com/vaxpass/vaxpass/shared/stage/revocation"
	"github.com/vaxpass/vaxpass/shared/stage/verification"
	"github.com/vaxpass/vaxpass/shared/wire"
	"github.com/vaxpass/vaxpass/shared/wire/routes"
	"github.com/vaxpass/vaxpass/web"
)

// Group is the public API (no key, rate limited): lookup, QR, verify, the trust list and
// the revocation list.
func Group(s *wire.System) routes.Group {
	return func(r *apigw.Router) error {
		p := s.Ports()
		ver, err := Verifier(s)
		if err != nil {
			return err
		}
		lim, err := apigw.NewLimiter(p.LookupRate, p.Now)
		if err != nil {
			return err
		}
		if p.SecurityEvents != nil {
			lim.Events = p.SecurityEvents
		}
		if p.LookupAttempts == nil {
			return fmt.Errorf("%w: LookupAttempts (the lookup's limit per ID number)", wire.ErrNoPort)
		}
		looker := lookup.Limited{Service: s.Lookup(), Limit: &lookup.Limiter{
			Store: p.LookupAttempts, Secret: p.LookupSecret, Now: p.Now, Log: p.Log,
		}}
		if p.TrustListJSON == nil {
			return fmt.Errorf("%w: TrustListJSON", wire.ErrNoPort)
		}
		pub, err := s.Publisher()
		if err != nil {
			return err
		}
		pubAPI := &httpapi.Public{
			Lookup: looker, Verifier: verdicts{ver}, TrustList: p.TrustListJSON,
			RenderQR:  func(hc1 string) ([]byte, error) { return qr.PNG(hc1) },
			RenderPDF: passportpage.PDF,
			Limiter:   lim, Now: p.Now, Log: p.Log,
		}
		if p.SecurityEvents != nil {
			pubAPI.Events = p.SecurityEvents
		}
		pubAPI.Routes(r)
		reports, err := routes.Reports(s)
		if err != nil {
			return err
		}
		(&httpapi.Reports{Service: reports, Limiter: lim, Log: p.Log, Events: pubAPI.Events}).Routes(r)
		(&httpapi.RevocationList{Log: p.Log, Revocations: func(ctx context.Context) ([]byte, error) {
			b, _, err := pub.Current(ctx)
			return b, err
		}}).Routes(r)
		return nil
	}
}

// LookupPages serve the citizen's lookup page.
func LookupPages(r *apigw.Router) error {
	h := routes.HTTPRoute(web.Handler())
	r.Handle(routes.RoutePage, h)
	r.Handle(routes.RouteReportPage, h)
	r.Handle(routes.RouteStatic, h)
	return nil
}

// Verifier is POST /v1/verify's use case: the trust list, and the revocation list when the
// backend keeps one. (Not in wire.System: it links the JSON-schema library, which only the
// functions that verify foreign certificates need.)
func Verifier(s *wire.System) (*verification.Service, error) {
	p := s.Ports()
	if p.Trust == nil {
		return nil, fmt.Errorf("%w: Trust (verification)", wire.ErrNoPort)
	}
	v := &verification.Service{Trust: p.Trust, Now: p.Now}
	if p.Revocations != nil {
		v.Revocations = revocation.Lookup{List: p.Revocations}
	}
	return v, nil
}

// verdicts gives the API the verifier's verdicts (httpapi.Verifier).
type verdicts struct{ v *verification.Service }

func (d verdicts) Verify(ctx context.Context, hc1 string) any { return d.v.Verify(ctx, hc1) }

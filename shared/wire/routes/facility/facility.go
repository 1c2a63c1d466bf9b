// Package facility is the route group of the keys of facilities, commune clerks and
// registry officers: uploads, imports, a dose's status, worklists, corrections, POST
// /v1/signatures and the officer's list of records with their registry candidates.
package facility

import (
	"fmt"

	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/edge/httpapi"
	"github.com/vaxpass/vaxpass/shared/stage/ingest"
	"github.com/vaxpass/vaxpass/shared/wire"
	"github.com/vaxpass/vaxpass/shared/wire/routes"
)

// Group is the API of facility keys (uploads, imports, a dose's status, worklists,
// corrections, POST /v1/signatures), clerk keys (their commune's worklists and
// corrections) and officer keys (corrections, GET /v1/registry/records).
func Group(s *wire.System) routes.Group {
	return func(r *apigw.Router) error {
		p := s.Ports()
		auth, err := routes.Auth(s)
		if err != nil {
			return err
		}
		doses, ok := p.Store.(httpapi.DoseReader)
		if !ok {
			return fmt.Errorf("%w: a Store that lists doses by commune (clerk worklists)", wire.ErrNoPort)
		}
		ing := &ingest.Service{Doses: p.Store, Now: p.Now}
		runs, err := s.SigningRuns()
		if err != nil {
			return err
		}
		reports, err := routes.Reports(s)
		if err != nil {
			return err
		}
		(&httpapi.Facility{
			Auth: auth, Facilities: p.Store, Ingest: ing, Doses: doses, Certs: p.Store,
			Signer: runs, Worklists: Worklists{Now: p.Now}, Reports: reports, Now: p.Now, Log: p.Log, SignInCall: p.SignInCall,
		}).Routes(r)
		if p.Audit == nil {
			return fmt.Errorf("%w: Audit (corrections and disclosures are audited)", wire.ErrNoPort)
		}
		(&httpapi.Corrections{Auth: auth, Facilities: p.Store, Doses: doses, Ingest: ing, Audit: p.Audit, Now: p.Now, Log: p.Log}).Routes(r)
		(&httpapi.Reports{Auth: auth, Service: reports, Log: p.Log}).WorklistRoutes(r)
		(&httpapi.Registry{Auth: auth, Doses: doses, Worklists: Worklists{Now: p.Now}, Audit: p.Audit, Now: p.Now, Log: p.Log}).Routes(r)
		return nil
	}
}

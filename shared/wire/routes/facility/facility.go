// Package facility is the facility API's route group (facility API key): uploads,
// imports, a dose's status, worklists, corrections and POST /v1/signatures.
package facility

import (
	"fmt"

	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/edge/httpapi"
	"github.com/vaxpass/vaxpass/shared/stage/ingest"
	"github.com/vaxpass/vaxpass/shared/wire"
	"github.com/vaxpass/vaxpass/shared/wire/routes"
)

// Group is the facility API (facility API key): uploads, imports, a dose's status,
// worklists, corrections and POST /v1/signatures.
func Group(s *wire.System) routes.Group {
	return func(r *apigw.Router) error {
		p := s.Ports()
		ing := &ingest.Service{Doses: p.Store, Now: p.Now}
		runs, err := s.SigningRuns()
		if err != nil {
			return err
		}
		(&httpapi.Facility{
			Facilities: p.Store, Ingest: ing, Doses: p.Store, Certs: p.Store,
			Signer: runs, Worklists: Worklists{Now: p.Now}, Now: p.Now, Log: p.Log, SignInCall: p.SignInCall,
		}).Routes(r)
		if p.Audit == nil {
			return fmt.Errorf("%w: Audit (corrections are audited)", wire.ErrNoPort)
		}
		(&httpapi.Corrections{Facilities: p.Store, Doses: p.Store, Ingest: ing, Audit: p.Audit, Now: p.Now, Log: p.Log}).Routes(r)
		return nil
	}
}

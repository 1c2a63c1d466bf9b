// Command public-api is the public API: lookup, QR, verify, trust and revocation lists, the lookup page (template.yaml: PublicApiFunction).
// Build: GOOS=linux CGO_ENABLED=0 go build -tags lambda.norpc -o bootstrap (provided.al2023).
package main

import (
	"github.com/vaxpass/vaxpass/shared/wire/cloud"
	"github.com/vaxpass/vaxpass/shared/wire/routes"
	"github.com/vaxpass/vaxpass/shared/wire/routes/public"
)

func main() {
	cloud.Start(func(s *cloud.Stack) (any, error) {
		r, err := routes.Router(public.Group(s.Sys), public.LookupPages)
		if err != nil {
			return nil, err
		}
		// Bodies refused and routes busy are security events (logged, counted for ops).
		routes.GuardEvents(r, s.Sys.Ports().SecurityEvents)
		return r.Serve, nil
	})
}

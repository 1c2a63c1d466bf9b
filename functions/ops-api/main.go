// Command ops-api is the ops API and the /ops dashboard (template.yaml: OpsApiFunction);
// reprocessing runs are the ops worker function's (remoteruns).
// Build: GOOS=linux CGO_ENABLED=0 go build -tags lambda.norpc -o bootstrap (provided.al2023).
package main

import (
	"os"

	"github.com/vaxpass/vaxpass/shared/wire/cloud"
	"github.com/vaxpass/vaxpass/shared/wire/cloud/deadletters"
	"github.com/vaxpass/vaxpass/shared/wire/cloud/remoteruns"
	"github.com/vaxpass/vaxpass/shared/wire/routes"
)

func main() {
	cloud.Start(func(s *cloud.Stack) (any, error) {
		runs, err := remoteruns.New(s, os.Getenv(remoteruns.EnvOpsFunction))
		if err != nil {
			return nil, err
		}
		r, err := routes.Router(routes.Ops(s.Sys, runs), routes.OpsPages)
		if err != nil {
			return nil, err
		}
		// Bodies refused and routes busy are security events (logged, counted for ops).
		routes.GuardEvents(r, s.Sys.Ports().SecurityEvents)
		return r.Serve, nil
	}, deadletters.Option)
}

// Command ops is ops: the ops API and dashboard, reprocessing runs (its work queue) and direct invokes (template.yaml: OpsFunction).
// Build: GOOS=linux CGO_ENABLED=0 go build -tags lambda.norpc -o bootstrap (provided.al2023).
package main

import (
	"github.com/vaxpass/vaxpass/shared/wire/cloud"
	"github.com/vaxpass/vaxpass/shared/wire/cloud/deadletters"
	"github.com/vaxpass/vaxpass/shared/wire/routes"
)

func main() {
	cloud.Start(func(s *cloud.Stack) (any, error) {
		r, err := routes.Router(routes.Ops(s.Sys), routes.OpsPages)
		if err != nil {
			return nil, err
		}
		return cloud.APIOr(r.Serve, s.HandleOpsEvent), nil
	}, deadletters.Option)
}

// Command ops is the ops worker (template.yaml: OpsFunction): reprocessing runs from its
// work queue, and the direct invokes of the CLI and of the ops API function.
// Build: GOOS=linux CGO_ENABLED=0 go build -tags lambda.norpc -o bootstrap (provided.al2023).
package main

import "github.com/vaxpass/vaxpass/shared/wire/cloud"

func main() {
	cloud.Start(func(s *cloud.Stack) (any, error) {
		return s.HandleOpsEvent, nil
	})
}

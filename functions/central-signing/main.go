// Command central-signing is the central signing queues: issuing certificates with the DSC key (template.yaml: CentralSigningFunction).
// Build: GOOS=linux CGO_ENABLED=0 go build -tags lambda.norpc -o bootstrap (provided.al2023).
package main

import "github.com/vaxpass/vaxpass/shared/wire/cloud"

func main() {
	cloud.Start(func(s *cloud.Stack) (any, error) {
		return s.CentralHandler()
	})
}

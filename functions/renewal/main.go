// Command renewal is renewal: the daily re-signing of certificates that expire soon (template.yaml: RenewalFunction).
// Build: GOOS=linux CGO_ENABLED=0 go build -tags lambda.norpc -o bootstrap (provided.al2023).
package main

import "github.com/vaxpass/vaxpass/shared/wire/cloud"

func main() {
	cloud.Start(func(s *cloud.Stack) (any, error) {
		return s.HandleRenewal, nil
	})
}

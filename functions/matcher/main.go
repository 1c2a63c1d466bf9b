// Command matcher is the matcher: the doses table's stream, matched against the registry (template.yaml: MatcherFunction).
// Build: GOOS=linux CGO_ENABLED=0 go build -tags lambda.norpc -o bootstrap (provided.al2023).
package main

import "github.com/vaxpass/vaxpass/shared/wire/cloud"

func main() {
	cloud.Start(func(s *cloud.Stack) (any, error) {
		return s.Sys.StreamHandler().Handle, nil
	})
}

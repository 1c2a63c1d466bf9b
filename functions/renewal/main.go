// Command renewal is the renewal: the daily schedule Lambda (template.yaml: RenewalFunction).
// Build: GOOS=linux CGO_ENABLED=0 go build -tags lambda.norpc -o bootstrap (provided.al2023).
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/vaxpass/vaxpass/shared/app"
)

func main() {
	cfg, err := app.AWSConfigFromEnv(os.Getenv)
	if err != nil {
		app.Fatal(err)
	}
	sys, err := app.OpenAWS(context.Background(), cfg)
	if err != nil {
		app.Fatal(err)
	}
	lambda.Start(sys.HandleRenewal)
}

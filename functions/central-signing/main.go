// Command central-signing is the central signing: the central queue, issuing with the DSC key Lambda (template.yaml: CentralSigningFunction).
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
	lambda.Start(sys.Worker.Handle)
}

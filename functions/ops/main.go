// Command ops is the ops reprocessing: direct invoke Lambda (template.yaml: OpsFunction).
// Build: GOOS=linux CGO_ENABLED=0 go build -tags lambda.norpc -o bootstrap (provided.al2023).
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/vaxpass/vaxpass/shared/wire"
)

func main() {
	cfg, err := wire.AWSConfigFromEnv(os.Getenv)
	if err != nil {
		wire.Fatal(err)
	}
	sys, err := wire.OpenAWS(context.Background(), cfg)
	if err != nil {
		wire.Fatal(err)
	}
	lambda.Start(sys.HandleOpsEvent)
}

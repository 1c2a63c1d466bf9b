// Package deadletters gives a stack its dead letters (shared/store/awsdlq: the central
// signing DLQ and the matcher stream's failure queue). A package of its own so that only
// the functions that list and redrive them link the DynamoDB Streams client.
package deadletters

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"

	"github.com/vaxpass/vaxpass/shared/store/awsdlq"
	"github.com/vaxpass/vaxpass/shared/wire"
	"github.com/vaxpass/vaxpass/shared/wire/cloud"
)

// Option is the cloud.Option that sets the DeadLetters port.
func Option(s *cloud.Stack, p *wire.Ports) error {
	cfg := s.Config()
	if cfg.CentralDLQURL == "" || cfg.MatcherFailureURL == "" {
		return fmt.Errorf("%w: dead letters need %s and %s", cloud.ErrConfig, cloud.EnvCentralDLQURL, cloud.EnvMatcherFailureURL)
	}
	dl, err := awsdlq.New(s.SQS(), dynamodbstreams.NewFromConfig(*cfg.SDK), s.Store,
		awsdlq.Queues{Central: cfg.CentralQueueURL, CentralDead: cfg.CentralDLQURL, MatcherFailure: cfg.MatcherFailureURL},
		awsdlq.Options{DosesTable: cfg.Tables.Doses, Log: cfg.Log})
	if err != nil {
		return err
	}
	p.DeadLetters = dl
	return nil
}

package awsddb_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/vaxpass/vaxpass/shared/store/awsddb"
	"github.com/vaxpass/vaxpass/shared/testkit/awstest"
	"github.com/vaxpass/vaxpass/shared/testkit/storetest"
)

// openStore creates fresh tables for t (deleted when it ends) and a store over them.
func openStore(t *testing.T, client *dynamodb.Client, opt awsddb.Options) (*awsddb.Store, awsddb.Tables) {
	t.Helper()
	names := awsddb.Tables{
		Doses:        awstest.UniqueName(t, "doses"),
		Certificates: awstest.UniqueName(t, "certs"),
		Facilities:   awstest.UniqueName(t, "facilities"),
	}
	awstest.DeleteTablesAtCleanup(t, client, names.Doses, names.Certificates, names.Facilities)
	if err := awsddb.CreateTables(t.Context(), client, names); err != nil {
		t.Fatal(err)
	}
	s, err := awsddb.New(client, names, opt)
	if err != nil {
		t.Fatal(err)
	}
	return s, names
}

// streamStore adds the storetest.ChangeEventReader of the Doses table's real DynamoDB
// stream, so the suite checks the stream records every write emits.
type streamStore struct {
	*awsddb.Store
	streams *dynamodbstreams.Client
	arn     string
}

func TestStoreContract(t *testing.T) {
	cfg := awstest.Config(t)
	client := dynamodb.NewFromConfig(cfg)
	streams := dynamodbstreams.NewFromConfig(cfg)

	// Sequential writes, so the stream's order across keys is the batch order the suite
	// expects; the suite then also checks every stream record.
	t.Run("WithStream", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) storetest.Store {
			s, names := openStore(t, client, awsddb.Options{Concurrency: 1})
			out, err := client.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(names.Doses)})
			if err != nil {
				t.Fatal(err)
			}
			arn := aws.ToString(out.Table.LatestStreamArn)
			if arn == "" {
				t.Fatal("the doses table has no stream")
			}
			return &streamStore{Store: s, streams: streams, arn: arn}
		})
	})
	// The default, parallel writes.
	t.Run("Parallel", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) storetest.Store {
			s, _ := openStore(t, client, awsddb.Options{})
			return s
		})
	})
}

// ChangeEvents reads every record of the stream from its start, as Lambda would deliver
// them.
func (s *streamStore) ChangeEvents(ctx context.Context) ([]events.DynamoDBEventRecord, error) {
	desc, err := s.streams.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(s.arn)})
	if err != nil {
		return nil, err
	}
	var out []events.DynamoDBEventRecord
	for _, sh := range desc.StreamDescription.Shards {
		it, err := s.streams.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{
			StreamArn: aws.String(s.arn), ShardId: sh.ShardId, ShardIteratorType: streamtypes.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			return nil, err
		}
		iter := it.ShardIterator
		for iter != nil {
			page, err := s.streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				return nil, err
			}
			for _, r := range page.Records {
				ev, err := lambdaRecord(r, s.arn)
				if err != nil {
					return nil, err
				}
				out = append(out, ev)
			}
			if len(page.Records) == 0 {
				break // caught up with an open shard
			}
			iter = page.NextShardIterator
		}
	}
	return out, nil
}

// lambdaRecord is a stream record as the Lambda event source mapping delivers it.
func lambdaRecord(r streamtypes.Record, arn string) (events.DynamoDBEventRecord, error) {
	ev := events.DynamoDBEventRecord{
		AWSRegion:      aws.ToString(r.AwsRegion),
		EventID:        aws.ToString(r.EventID),
		EventName:      string(r.EventName),
		EventSource:    aws.ToString(r.EventSource),
		EventVersion:   aws.ToString(r.EventVersion),
		EventSourceArn: arn,
	}
	if d := r.Dynamodb; d != nil {
		var err error
		ev.Change.SequenceNumber = aws.ToString(d.SequenceNumber)
		ev.Change.SizeBytes = aws.ToInt64(d.SizeBytes)
		ev.Change.StreamViewType = string(d.StreamViewType)
		if d.ApproximateCreationDateTime != nil {
			ev.Change.ApproximateCreationDateTime = events.SecondsEpochTime{Time: *d.ApproximateCreationDateTime}
		}
		if ev.Change.Keys, err = image(d.Keys); err != nil {
			return ev, err
		}
		if ev.Change.NewImage, err = image(d.NewImage); err != nil {
			return ev, err
		}
		if ev.Change.OldImage, err = image(d.OldImage); err != nil {
			return ev, err
		}
	}
	return ev, nil
}

func image(m map[string]streamtypes.AttributeValue) (map[string]events.DynamoDBAttributeValue, error) {
	if m == nil {
		return nil, nil
	}
	out := make(map[string]events.DynamoDBAttributeValue, len(m))
	for k, v := range m {
		a, err := attribute(v)
		if err != nil {
			return nil, fmt.Errorf("attribute %s: %w", k, err)
		}
		out[k] = a
	}
	return out, nil
}

func attribute(v streamtypes.AttributeValue) (events.DynamoDBAttributeValue, error) {
	switch v := v.(type) {
	case *streamtypes.AttributeValueMemberS:
		return events.NewStringAttribute(v.Value), nil
	case *streamtypes.AttributeValueMemberN:
		return events.NewNumberAttribute(v.Value), nil
	case *streamtypes.AttributeValueMemberB:
		return events.NewBinaryAttribute(v.Value), nil
	case *streamtypes.AttributeValueMemberBOOL:
		return events.NewBooleanAttribute(v.Value), nil
	case *streamtypes.AttributeValueMemberNULL:
		return events.NewNullAttribute(), nil
	case *streamtypes.AttributeValueMemberSS:
		return events.NewStringSetAttribute(v.Value), nil
	case *streamtypes.AttributeValueMemberNS:
		return events.NewNumberSetAttribute(v.Value), nil
	case *streamtypes.AttributeValueMemberBS:
		return events.NewBinarySetAttribute(v.Value), nil
	case *streamtypes.AttributeValueMemberL:
		l := make([]events.DynamoDBAttributeValue, len(v.Value))
		for i, e := range v.Value {
			a, err := attribute(e)
			if err != nil {
				return events.DynamoDBAttributeValue{}, err
			}
			l[i] = a
		}
		return events.NewListAttribute(l), nil
	case *streamtypes.AttributeValueMemberM:
		m, err := image(v.Value)
		if err != nil {
			return events.DynamoDBAttributeValue{}, err
		}
		return events.NewMapAttribute(m), nil
	}
	return events.DynamoDBAttributeValue{}, fmt.Errorf("unknown attribute value type %T", v)
}

func TestCreateTablesExisting(t *testing.T) {
	cfg := awstest.Config(t)
	client := dynamodb.NewFromConfig(cfg)
	_, names := openStore(t, client, awsddb.Options{})
	// Bootstrapping again keeps the tables.
	if err := awsddb.CreateTables(t.Context(), client, names); err != nil {
		t.Fatalf("CreateTables over the store's own tables: %v", err)
	}
	// A table of that name with another schema is refused, not used.
	other := names
	other.Doses = awstest.UniqueName(t, "other")
	awstest.DeleteTablesAtCleanup(t, client, other.Doses)
	_, err := client.CreateTable(t.Context(), &dynamodb.CreateTableInput{
		TableName:            aws.String(other.Doses),
		BillingMode:          ddbtypes.BillingModePayPerRequest,
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: ddbtypes.KeyTypeHash}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := awsddb.CreateTables(t.Context(), client, other); !errors.Is(err, awsddb.ErrConfig) {
		t.Errorf("CreateTables over a table with another schema: %v, want ErrConfig", err)
	}
	if _, err := awsddb.New(client, awsddb.Tables{Doses: "d"}, awsddb.Options{}); !errors.Is(err, awsddb.ErrConfig) {
		t.Errorf("New without every table name: %v, want ErrConfig", err)
	}
}

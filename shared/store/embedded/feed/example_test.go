package feed_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/aws/aws-lambda-go/events"
	bolt "go.etcd.io/bbolt"

	"github.com/vaxpass/vaxpass/shared/store/embedded/feed"
)

// A dose store writes a record and its change in one transaction; a pump then drives a
// DynamoDB-stream Lambda handler (here: a matcher) from the feed.
func ExamplePump() {
	dir, _ := os.MkdirTemp("", "feed-example")
	defer os.RemoveAll(dir)
	db, err := bolt.Open(filepath.Join(dir, "vaxpass.db"), 0o600, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	doses, err := feed.Open(db, "doses", feed.Config{Table: "Doses"})
	if err != nil {
		fmt.Println(err)
		return
	}

	for _, id := range []string{"a1", "a2"} {
		err := db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("doses"))
			if err != nil {
				return err
			}
			if err := b.Put([]byte(id), []byte(`{"status":"PENDING"}`)); err != nil {
				return err
			}
			_, err = doses.Append(tx, feed.Change{
				EventName: feed.Insert,
				Keys:      map[string]events.DynamoDBAttributeValue{"source_id": events.NewStringAttribute(id)},
				NewImage: map[string]events.DynamoDBAttributeValue{
					"source_id": events.NewStringAttribute(id),
					"status":    events.NewStringAttribute("PENDING"),
				},
			})
			return err // the record and its change commit together, or neither does
		})
		if err != nil {
			fmt.Println(err)
			return
		}
	}

	matcher := func(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
		var resp events.DynamoDBEventResponse
		for _, r := range ev.Records {
			id := r.Change.Keys["source_id"].String()
			fmt.Println(r.EventName, id, r.Change.SequenceNumber)
			if id == "a2" { // say the registry timed out: retry from here
				resp.BatchItemFailures = append(resp.BatchItemFailures,
					events.DynamoDBBatchItemFailure{ItemIdentifier: r.Change.SequenceNumber})
			}
		}
		return resp, nil
	}
	pump, err := feed.NewPump(doses, "matcher", matcher, feed.PumpConfig{MaxRetries: 3})
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := pump.RunOnce(context.Background()) // Run(ctx) loops until ctx is cancelled
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%+v\n", res)
	// Output:
	// INSERT a1 000000000000000000001
	// INSERT a2 000000000000000000002
	// {Received:2 Succeeded:1 Failed:1 DeadLettered:0 Attempt:1 Checkpoint:1 Unavailable:false}
}

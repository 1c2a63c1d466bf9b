package queue_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-lambda-go/events"
	bolt "go.etcd.io/bbolt"

	"github.com/vaxpass/vaxpass/shared/store/embedded/queue"
)

// A local process drives an SQS-triggered Lambda handler from an embedded queue.
func ExamplePump() {
	dir, _ := os.MkdirTemp("", "queue-example")
	defer os.RemoveAll(dir)
	db, err := bolt.Open(filepath.Join(dir, "vaxpass.db"), 0o600, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()

	ctx := context.Background()
	q, err := queue.Open(db, "central-signing", queue.Config{MaxReceiveCount: 5})
	if err != nil {
		fmt.Println(err)
		return
	}
	// The dedup id makes re-sending the same person harmless.
	for _, person := range []string{"p1", "p2", "p1"} {
		res, err := q.Send(ctx, []byte(`{"person":"`+person+`"}`), queue.SendOptions{DedupID: person})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println("sent", res.ID, "duplicate:", res.Duplicate)
	}

	handler := func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		var resp events.SQSEventResponse
		for _, m := range ev.Records {
			fmt.Println("handling", m.Body, "from", m.EventSourceARN)
			if m.Body == `{"person":"p2"}` { // say signing is throttled: retry later
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
			}
		}
		return resp, nil
	}
	pump, err := queue.NewPump(q, handler, queue.PumpConfig{BatchSize: 10, VisibilityTimeout: time.Minute})
	if err != nil {
		fmt.Println(err)
		return
	}
	res, err := pump.RunOnce(ctx) // Run(ctx) loops until ctx is cancelled
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%+v\n", res)
	counts, _ := q.Counts(ctx)
	fmt.Printf("%+v\n", counts)
	// Output:
	// sent 0000000000000001 duplicate: false
	// sent 0000000000000002 duplicate: false
	// sent 0000000000000001 duplicate: true
	// handling {"person":"p1"} from arn:aws:sqs:local:000000000000:central-signing
	// handling {"person":"p2"} from arn:aws:sqs:local:000000000000:central-signing
	// {Received:2 Deleted:1 Failed:1 Unavailable:0}
	// {Visible:0 InFlight:1 Delayed:0 Dead:0}
}

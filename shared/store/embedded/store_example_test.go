package embedded_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/store/embedded"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Uploads are idempotent on facility + source_id, and every created dose is announced on
// the doses change feed in the same transaction.
func ExampleStore_PutNew() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "store-example")
	defer os.RemoveAll(dir)
	db, err := embedded.Open(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	store, err := embedded.OpenStore(db, embedded.StoreOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	now := time.Date(2021, 9, 1, 8, 0, 0, 0, time.UTC)
	d := vaxpass.Dose{
		FacilityID: "hcm-q1-01",
		Record:     dose.Record{SourceID: "A-0001", FullName: "Nguyễn Văn An", DOB: "1990-01-02", Gender: dose.Male, Vaccine: "PFIZER", DoseNumber: 1, VaccinatedOn: "2021-08-01"},
		Match:      match.Result{Status: match.Pending},
		ReceivedAt: now, UpdatedAt: now, Version: 1,
	}
	first, _ := store.PutNew(ctx, []vaxpass.Dose{d})
	again, _ := store.PutNew(ctx, []vaxpass.Dose{d})
	evs, _ := store.ChangeEvents(ctx)
	fmt.Println("created:", first, "re-sent:", again)
	fmt.Println("events:", len(evs), evs[0].EventName, evs[0].Change.Keys["source_id"].String())
	// Output:
	// created: [true] re-sent: [false]
	// events: 1 INSERT A-0001
}

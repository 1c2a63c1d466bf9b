package embedded_test

import (
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/store/embedded"
	"github.com/vaxpass/vaxpass/shared/testkit/storetest"
)

// TestOpsContract: the ops records of the embedded backend -- runs in the store, the
// revocation list and the audit trail, one database -- pass the suite the DynamoDB ops
// table (shared/store/awsops) passes too.
func TestOpsContract(t *testing.T) {
	storetest.RunOps(t, func(t *testing.T) storetest.Ops {
		db, err := embedded.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		store, err := embedded.OpenStore(db, embedded.StoreOptions{Now: time.Now})
		if err != nil {
			t.Fatal(err)
		}
		list, err := embedded.OpenRevocationList(db)
		if err != nil {
			t.Fatal(err)
		}
		log, err := embedded.OpenAuditLog(db, nil)
		if err != nil {
			t.Fatal(err)
		}
		return storetest.Ops{Runs: store, Revocations: list, Audit: log}
	})
}

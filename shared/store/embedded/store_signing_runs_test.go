package embedded_test

import (
	"testing"

	"github.com/vaxpass/vaxpass/shared/stage/signing"
	"github.com/vaxpass/vaxpass/shared/store/embedded"
	"github.com/vaxpass/vaxpass/shared/testkit/storetest"
)

func TestSigningRunsContract(t *testing.T) {
	storetest.RunSigningRuns(t, func(t *testing.T) signing.RunStore {
		db, err := embedded.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		st, err := embedded.OpenSigningRuns(db)
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

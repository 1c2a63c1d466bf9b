package embedded_test

import (
	"testing"

	"github.com/vaxpass/vaxpass/shared/stage/report"
	"github.com/vaxpass/vaxpass/shared/store/embedded"
	"github.com/vaxpass/vaxpass/shared/testkit/storetest"
)

func TestReportsContract(t *testing.T) {
	storetest.RunReports(t, func(t *testing.T) report.Store {
		db, err := embedded.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		st, err := embedded.OpenReports(db)
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

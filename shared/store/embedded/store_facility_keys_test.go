package embedded

import (
	"testing"

	"github.com/vaxpass/vaxpass/shared/testkit/storetest"
)

func TestFacilityKeysContract(t *testing.T) {
	storetest.RunFacilityKeys(t, func(t *testing.T) storetest.FacilityKeyStore {
		db, s := openTestStore(t, t.TempDir())
		t.Cleanup(func() { db.Close() })
		return s
	})
}

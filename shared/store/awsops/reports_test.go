package awsops_test

import (
	"testing"

	"github.com/vaxpass/vaxpass/shared/stage/report"
	"github.com/vaxpass/vaxpass/shared/testkit/storetest"
)

// TestReportsContract: citizens' reports behave as the embedded backend's do.
func TestReportsContract(t *testing.T) {
	storetest.RunReports(t, func(t *testing.T) report.Store {
		st, _, _ := openTable(t)
		return st
	})
}

package httpapi_test

import (
	"context"
	"testing"

	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/edge/httpapi"
	"github.com/vaxpass/vaxpass/shared/stage/stats"
)

// drillStats is a stats service that drills down: it records the queries it was asked.
type drillStats struct {
	fakeStats
	queries []stats.Query
}

func (d *drillStats) SnapshotOf(_ context.Context, q stats.Query) (stats.Snapshot, error) {
	d.queries = append(d.queries, q)
	snap := d.snap
	snap.Communes = &stats.ProvinceCommunes{Province: q.Province, Communes: []stats.Commune{{Code: "0790001"}}}
	return snap, nil
}

// GET /v1/stats?province= asks the service for that province's communes; without it, or
// from a service that cannot drill down, the country's numbers alone.
func TestStatsProvinceDrillDown(t *testing.T) {
	d := &drillStats{fakeStats: fakeStats{snap: stats.Snapshot{Statuses: stats.Statuses}}}
	auth := &httpapi.OpsAuth{Auth: &httpapi.Auth{Keys: opsKeyStore()}}
	r := apigw.NewRouter()
	(&httpapi.OpsStats{Auth: auth, Stats: d}).Routes(r)

	status, doc := serveOps(t, r, "GET", "/v1/stats?province=079", "vxo_good", "")
	if status != 200 || len(d.queries) != 1 || d.queries[0].Province != "079" {
		t.Fatalf("?province=079: %d, queries %+v", status, d.queries)
	}
	if c, ok := doc["communes"].(map[string]any); !ok || c["province"] != "079" {
		t.Errorf("?province=079 answered %v", doc["communes"])
	}
	status, doc = serveOps(t, r, "GET", "/v1/stats", "vxo_good", "")
	if status != 200 || len(d.queries) != 1 || doc["communes"] != nil {
		t.Errorf("no province: %d, queries %+v, communes %v", status, d.queries, doc["communes"])
	}
	if status, _ := serveOps(t, r, "GET", "/v1/stats?province=079", "", ""); status != 401 || len(d.queries) != 1 {
		t.Errorf("without the ops key: %d, queries %+v", status, d.queries)
	}

	plain := opsRouter(t, fakeStats{snap: stats.Snapshot{Statuses: stats.Statuses}}, nil, nil)
	if status, doc := serveOps(t, plain, "GET", "/v1/stats?province=079", "vxo_good", ""); status != 200 || doc["communes"] != nil {
		t.Errorf("a service without drill-down: %d %v", status, doc["communes"])
	}
}

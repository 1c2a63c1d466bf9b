package httpapi

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/stage/stats"
)

// StatsSnapshots gives the dashboard's numbers (stats.Service).
type StatsSnapshots interface {
	Snapshot(ctx context.Context) (stats.Snapshot, error)
}

// StatsDrillDown gives the numbers with a province's communes (stats.Service); a
// StatsSnapshots without it answers ?province= without the drill-down.
type StatsDrillDown interface {
	SnapshotOf(ctx context.Context, q stats.Query) (stats.Snapshot, error)
}

// OpsStats serves the dashboard's numbers behind the ops key:
//
//	GET /v1/stats                per province and per facility: dose records per match
//	                             status, certificates valid, expiring, expired and
//	                             revoked; issuance per day; security events by kind,
//	                             today and in all ("security"); read when asked ("as_of")
//	GET /v1/stats?province=079   the same, with that province's dose records per commune
//	                             ("communes")
//
// The same numbers fill the /ops page.
type OpsStats struct {
	Auth  *OpsAuth
	Stats StatsSnapshots
	Log   *slog.Logger
}

// Routes registers the route.
func (o *OpsStats) Routes(r *apigw.Router) {
	r.Handle("GET /v1/stats", o.Auth.Wrap(o.getStats))
}

func (o *OpsStats) getStats(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	var snap stats.Snapshot
	var err error
	province := req.QueryStringParameters["province"]
	if d, ok := o.Stats.(StatsDrillDown); ok && province != "" {
		// A code that names no province gets an empty drill-down (stats.Service).
		snap, err = d.SnapshotOf(ctx, stats.Query{Province: province})
	} else {
		snap, err = o.Stats.Snapshot(ctx)
	}
	if err != nil {
		return failure(o.log(), "GET /v1/stats", err), nil
	}
	return apigw.JSON(http.StatusOK, snap), nil
}

func (o *OpsStats) log() *slog.Logger {
	if o.Log != nil {
		return o.Log
	}
	return slog.Default()
}

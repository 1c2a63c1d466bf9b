package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/stage/reprocess"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// ReprocessRuns starts and reports reprocessing runs.
type ReprocessRuns interface {
	// Start creates the run (or finds the unfinished run of the same stage and filter)
	// and has it work in the background.
	Start(ctx context.Context, sel reprocess.Selector) (reprocess.Run, error)
	// DryRun reports what the selector would change, writing nothing.
	DryRun(ctx context.Context, sel reprocess.Selector) (reprocess.Summary, error)
	GetRun(ctx context.Context, id string) (reprocess.Run, error)
	ListRuns(ctx context.Context) ([]reprocess.Run, error)
}

// DeadLetter is one dead letter as ops see it (vaxpass.DeadLetter).
type DeadLetter = vaxpass.DeadLetter

// DeadLetters lists and redrives the dead letters of the central signing queue
// ("central") and of the matcher ("matcher").
type DeadLetters interface {
	ListDead(ctx context.Context, queue, after string, limit int) ([]DeadLetter, error)
	// Redrive moves the named dead letters (all when ids is empty) back to their consumer;
	// failed counts those handed to it at once that failed again.
	Redrive(ctx context.Context, queue string, ids []string) (moved, failed int, err error)
}

// Limits of the reprocessing endpoints.
const (
	// DryRunTime bounds a dry run answered by the API (API Gateway ends requests at 30 s);
	// a longer one answers done=false with what it counted: use the CLI or the ops Lambda.
	DryRunTime     = 25 * time.Second
	maxRedriveBody = 64 << 10
	// DeadLetterPage is the default and largest page of GET /v1/ops/dead-letters.
	DeadLetterPage = 1000
)

// OpsReprocess is the reprocessing API (OpsAuth):
//
//	POST /v1/ops/reprocess               a reprocess.Selector: 202 and the run (working in
//	                                     the background); with dry_run, 200 and the summary
//	GET  /v1/ops/reprocess               the runs
//	GET  /v1/ops/reprocess/{run_id}      one run
//	GET  /v1/ops/dead-letters?queue=central|matcher&after&limit
//	POST /v1/ops/dead-letters/redrive    {"queue":"central","ids":[...]} (no ids: all)
type OpsReprocess struct {
	Auth        *OpsAuth
	Runs        ReprocessRuns
	DeadLetters DeadLetters
	Log         *slog.Logger
}

// Routes registers the routes.
func (o *OpsReprocess) Routes(r *apigw.Router) {
	r.Handle("POST /v1/ops/reprocess", o.Auth.Wrap(o.postReprocess))
	r.Handle("GET /v1/ops/reprocess", o.Auth.Wrap(o.listRuns))
	r.Handle("GET /v1/ops/reprocess/{run_id}", o.Auth.Wrap(o.getRun))
	r.Handle("GET /v1/ops/dead-letters", o.Auth.Wrap(o.listDead))
	r.Handle("POST /v1/ops/dead-letters/redrive", o.Auth.Wrap(o.redrive))
}

// publicRun is a run as the API shows it: the in-flight batch (it names people by their
// registry ID) is left out.
func publicRun(run reprocess.Run) reprocess.Run {
	run.InFlight = nil
	return run
}

func (o *OpsReprocess) postReprocess(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	const route = "POST /v1/ops/reprocess"
	var sel reprocess.Selector
	if err := apigw.DecodeJSON(req, &sel, apigw.DecodeOptions{MaxBytes: reprocess.MaxSelectorBytes, DisallowUnknownFields: true}); err != nil {
		return failure(o.log(), route, err), nil
	}
	// The audit trail names the authenticated actor, whatever the body says.
	sel.Actor = OpsActor(ctx)
	if err := sel.Normalize(); err != nil {
		return failure(o.log(), route, selectorError(err)), nil
	}
	if sel.DryRun {
		ctx, cancel := context.WithTimeout(ctx, DryRunTime)
		defer cancel()
		sum, err := o.Runs.DryRun(ctx, sel)
		if err != nil && ctx.Err() == nil {
			return failure(o.log(), route, selectorError(err)), nil
		}
		// A unit's failure text is internal (the CLI shows it to the operator); here
		// only which records failed.
		for i := range sum.Failures {
			sum.Failures[i].Outcome = "failed"
		}
		return apigw.JSON(http.StatusOK, sum), nil
	}
	run, err := o.Runs.Start(ctx, sel)
	if errors.Is(err, reprocess.ErrRunFinished) {
		return apigw.Error(http.StatusConflict, codeConflict, "the run is finished; start a new one"), nil
	}
	if err != nil {
		return failure(o.log(), route, selectorError(err)), nil
	}
	return apigw.JSON(http.StatusAccepted, publicRun(run)), nil
}

// selectorError names the selector field at fault (reasons never repeat the value).
func selectorError(err error) error {
	var fe *reprocess.FieldError
	if errors.As(err, &fe) {
		return fieldError(fe.Field, "invalid_value", fe.Error())
	}
	return err
}

func (o *OpsReprocess) listRuns(ctx context.Context, _ events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	runs, err := o.Runs.ListRuns(ctx)
	if err != nil {
		return failure(o.log(), "GET /v1/ops/reprocess", err), nil
	}
	out := make([]reprocess.Run, len(runs))
	for i, r := range runs {
		out[i] = publicRun(r)
	}
	return apigw.JSON(http.StatusOK, map[string]any{"runs": out}), nil
}

func (o *OpsReprocess) getRun(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	run, err := o.Runs.GetRun(ctx, req.PathParameters["run_id"])
	if err != nil {
		return failure(o.log(), "GET /v1/ops/reprocess/{run_id}", err), nil
	}
	return apigw.JSON(http.StatusOK, publicRun(run)), nil
}

func (o *OpsReprocess) listDead(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	const route = "GET /v1/ops/dead-letters"
	q := req.QueryStringParameters
	queue := q["queue"]
	if queue == "" {
		queue = "central"
	}
	if queue != "central" && queue != "matcher" {
		return failure(o.log(), route, fieldError("queue", "invalid_value", "queue must be central or matcher")), nil
	}
	limit := DeadLetterPage
	if s, ok := q["limit"]; ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > DeadLetterPage {
			return failure(o.log(), route, fieldError("limit", "invalid_value", fmt.Sprintf("limit must be 1..%d", DeadLetterPage))), nil
		}
		limit = n
	}
	letters, err := o.DeadLetters.ListDead(ctx, queue, q["after"], limit)
	if err != nil {
		return failure(o.log(), route, err), nil
	}
	for i := range letters {
		letters[i].Reason = "" // the consumer's error text is internal (the CLI shows it)
	}
	next := ""
	if len(letters) == limit {
		next = letters[len(letters)-1].ID
	}
	if letters == nil {
		letters = []DeadLetter{}
	}
	return apigw.JSON(http.StatusOK, map[string]any{"dead_letters": letters, "next": next}), nil
}

type redriveRequest struct {
	Queue string   `json:"queue"`
	IDs   []string `json:"ids"`
}

func (o *OpsReprocess) redrive(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	const route = "POST /v1/ops/dead-letters/redrive"
	var body redriveRequest
	if err := apigw.DecodeJSON(req, &body, apigw.DecodeOptions{MaxBytes: maxRedriveBody, DisallowUnknownFields: true}); err != nil {
		return failure(o.log(), route, err), nil
	}
	if body.Queue != "central" && body.Queue != "matcher" {
		return failure(o.log(), route, fieldError("queue", "invalid_value", "queue is required: central or matcher")), nil
	}
	moved, failed, err := o.DeadLetters.Redrive(ctx, body.Queue, body.IDs)
	if err != nil {
		return failure(o.log(), route, err), nil
	}
	return apigw.JSON(http.StatusOK, map[string]int{"moved": moved, "failed": failed}), nil
}

func (o *OpsReprocess) log() *slog.Logger {
	if o.Log != nil {
		return o.Log
	}
	return slog.Default()
}

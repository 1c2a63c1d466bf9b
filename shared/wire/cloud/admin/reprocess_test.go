package admin

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/stage/reprocess"
	"github.com/vaxpass/vaxpass/shared/wire/cloud"
)

func runJSON(t *testing.T, r reprocess.Run) string {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStartReprocessFollowsTheRunUnderWay(t *testing.T) {
	sel := reprocess.Selector{Stage: reprocess.StageMatch, Filter: reprocess.Filter{Statuses: []match.Status{match.NotFound}}, Actor: "cli:anna"}
	norm := sel
	if err := norm.Normalize(); err != nil {
		t.Fatal(err)
	}
	under := reprocess.Run{ID: "rp-20240101T000000Z-0000000a", Stage: reprocess.StageMatch, Filter: norm.Filter, State: reprocess.Running}
	other := reprocess.Run{ID: "rp-20240101T000000Z-0000000b", Stage: reprocess.StageCentralSign, Filter: norm.Filter, State: reprocess.Running}

	// A run of the same selection is under way: it is returned, nothing is queued.
	f := &fakeLambda{answers: []func() (*lambda.InvokeOutput, error){
		ok(`{"action":"reprocess-runs","runs":[` + runJSON(t, other) + `,` + runJSON(t, under) + `]}`),
	}}
	run, started, err := testAdmin(f).StartReprocess(context.Background(), sel)
	if err != nil || started || run.ID != under.ID || len(f.calls) != 1 {
		t.Fatalf("with a run under way: %s started=%v %v after %d calls", run.ID, started, err, len(f.calls))
	}

	// None (the other is of another stage): the selector is sent to start a run.
	f = &fakeLambda{answers: []func() (*lambda.InvokeOutput, error){
		ok(`{"action":"reprocess-runs","runs":[` + runJSON(t, other) + `]}`),
		ok(`{"action":"reprocess","run":{"id":"rp-20240101T000000Z-0000000c","state":"running"}}`),
	}}
	run, started, err = testAdmin(f).StartReprocess(context.Background(), sel)
	if err != nil || !started || run.ID != "rp-20240101T000000Z-0000000c" || len(f.calls) != 2 {
		t.Fatalf("without a run under way: %+v started=%v %v", run, started, err)
	}
	var sent cloud.OpsRequest
	if err := json.Unmarshal([]byte(f.calls[1]), &sent); err != nil || sent.Action != cloud.ActionReprocess || sent.Selector == nil ||
		sent.Selector.Stage != reprocess.StageMatch || sent.Selector.Actor != "cli:anna" || sent.Selector.DryRun {
		t.Errorf("start request %s", f.calls[1])
	}

	// A restart goes straight to the ops function, which abandons the run under way.
	f = &fakeLambda{answers: []func() (*lambda.InvokeOutput, error){ok(`{"action":"reprocess","run":{"id":"rp-20240101T000000Z-0000000d","state":"running"}}`)}}
	restart := sel
	restart.Restart = true
	if _, started, err := testAdmin(f).StartReprocess(context.Background(), restart); err != nil || !started || len(f.calls) != 1 {
		t.Errorf("restart: started=%v %v after %d calls", started, err, len(f.calls))
	}
	// A bad selector never reaches the stack.
	f = &fakeLambda{}
	if _, _, err := testAdmin(f).StartReprocess(context.Background(), reprocess.Selector{Stage: "rematch"}); err == nil || len(f.calls) != 0 {
		t.Errorf("bad stage: %v after %d calls", err, len(f.calls))
	}
}

func TestFollowRun(t *testing.T) {
	id := "rp-20240101T000000Z-0000000e"
	status := func(r reprocess.Run) func() (*lambda.InvokeOutput, error) {
		return ok(`{"action":"reprocess-status","run":` + runJSON(t, r) + `}`)
	}
	f := &fakeLambda{answers: []func() (*lambda.InvokeOutput, error){
		status(reprocess.Run{ID: id, State: reprocess.Running, Total: 10, InFlight: &reprocess.Batch{}}),
		failed(`{"errorMessage":"Runtime exited before returning a response","errorType":"Runtime.ExitError"}`),
		status(reprocess.Run{ID: id, State: reprocess.Running, Total: 10, Resumes: 1, Counts: reprocess.Counts{Scanned: 10}}),
		status(reprocess.Run{ID: id, State: reprocess.Done, Total: 10, Resumes: 1, Counts: reprocess.Counts{Scanned: 10}}),
		status(reprocess.Run{ID: id, State: reprocess.Done, Total: 10, Resumes: 1, Audited: true, Counts: reprocess.Counts{Scanned: 10, Changed: 7}}),
	}}
	var seen []string
	run, err := testAdmin(f).FollowRun(context.Background(), reprocess.Run{ID: id, State: reprocess.Running}, 0, func(r reprocess.Run, err error) {
		if err != nil {
			seen = append(seen, "error")
			return
		}
		seen = append(seen, string(r.State))
	})
	if err != nil || !Finished(run) || run.Counts.Changed != 7 {
		t.Fatalf("followed to %+v, %v", run, err)
	}
	if got := strings.Join(seen, ","); got != "running,error,running,done,done" {
		t.Errorf("states seen %s", got)
	}

	// The ops function failing every read ends the wait.
	f = &fakeLambda{answers: []func() (*lambda.InvokeOutput, error){failed(`{"errorMessage":"boom"}`)}}
	_, err = testAdmin(f).FollowRun(context.Background(), reprocess.Run{ID: id, State: reprocess.Running}, 0, nil)
	var fe *FunctionError
	if !errors.As(err, &fe) || len(f.calls) != FollowFailures {
		t.Errorf("failing reads: %v after %d reads", err, len(f.calls))
	}
	// A finished run needs no read.
	f = &fakeLambda{}
	if _, err := testAdmin(f).FollowRun(context.Background(), reprocess.Run{ID: id, State: reprocess.Done, Audited: true}, 0, nil); err != nil || len(f.calls) != 0 {
		t.Errorf("finished run: %v after %d reads", err, len(f.calls))
	}
}

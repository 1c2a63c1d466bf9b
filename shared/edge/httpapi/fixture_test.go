package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"iter"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/domain/access"
	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/edge/httpapi"
	"github.com/vaxpass/vaxpass/shared/hc1/qr"
	"github.com/vaxpass/vaxpass/shared/stage/ingest"
	"github.com/vaxpass/vaxpass/shared/stage/lookup"
	"github.com/vaxpass/vaxpass/shared/stage/signing"
	"github.com/vaxpass/vaxpass/shared/stage/verification"
	"github.com/vaxpass/vaxpass/shared/stage/worklist"
	"github.com/vaxpass/vaxpass/shared/store/embedded"
	"github.com/vaxpass/vaxpass/shared/store/filekeys"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/shared/wire/routes/facility"
)

// today is the fixture's clock: after every dose of the seeds.
var today = time.Date(2022, 7, 15, 8, 0, 0, 0, time.UTC)

const (
	fixtureFacility = "site-1"
	fixtureKey      = "vxp_test-key-of-site-1"
	xlsxType        = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	// Keys of the other roles: a clerk of commune fixtureCommune, an officer, ops.
	fixtureCommune = "00001"
	clerkKey       = "vxc_test-clerk"
	officerKey     = "vxr_test-officer"
	opsKey         = "vxo_test-ops"
)

// fixture is the API's real router over the embedded store in a temporary directory: the
// same use cases the system wires, with the central signing queue recorded instead of
// pumped (what these tests look at ends at the API).
type fixture struct {
	router *apigw.Router
	store  *embedded.Store
	queue  *sentSignatures
	keys   *memKeys
	audit  *embedded.AuditLog
	events *eventLog
}

// sentSignatures is the central signing queue as facility signing sees it.
type sentSignatures struct {
	mu   sync.Mutex
	sent []vaxpass.FacilitySignature
}

func (q *sentSignatures) SendSignature(_ context.Context, sig vaxpass.FacilitySignature) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.sent = append(q.sent, sig)
	return nil
}

// inlineRuns continues a signing run in the caller (the fixture's clock does not move,
// so POST /v1/signatures signs everything in the call).
type inlineRuns struct{ runs *signing.Runs }

func (q inlineRuns) ContinueSigningRun(ctx context.Context, id string) error {
	_, err := q.runs.Continue(ctx, id, time.Time{})
	return err
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	dir := tb.TempDir()
	db, err := embedded.Open(dir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	db.Bolt().NoSync = true // a scratch database
	now := func() time.Time { return today }
	store, err := embedded.OpenStore(db, embedded.StoreOptions{Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	keys, err := filekeys.Open(dir)
	if err != nil {
		tb.Fatal(err)
	}
	central, err := filekeys.EnsureCentral(dir, today)
	if err != nil {
		tb.Fatal(err)
	}
	keyID, _, err := keys.EnsureFacilityKey(fixtureFacility)
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	if err := store.AddFacility(ctx, vaxpass.Facility{ID: fixtureFacility, Name: "Site 1", APIKeyHash: access.Hash(fixtureKey), KeyID: keyID, CreatedAt: today}); err != nil {
		tb.Fatal(err)
	}
	apiKeys := newMemKeys().add(fixtureKey, access.Facility, fixtureFacility, false).
		add(clerkKey, access.Clerk, fixtureCommune, false).
		add(officerKey, access.Officer, "officer-olga", false).
		add(opsKey, access.Ops, "ops-anna", false)
	events := &eventLog{}
	auth := &httpapi.Auth{Keys: apiKeys, Events: events}
	auditLog, err := embedded.OpenAuditLog(db, now)
	if err != nil {
		tb.Fatal(err)
	}
	limiter, err := apigw.NewLimiter(apigw.RateLimit{Rate: 1e6, Burst: 1e6, MaxKeys: 100}, now)
	if err != nil {
		tb.Fatal(err)
	}
	queue := &sentSignatures{}
	runStore, err := embedded.OpenSigningRuns(db)
	if err != nil {
		tb.Fatal(err)
	}
	runs := &signing.Runs{Signer: &signing.FacilityService{Store: store, Keys: keys, Queue: queue, Now: now}, Store: runStore, Now: now}
	runs.Queue = inlineRuns{runs}
	r := apigw.NewRouter()
	ing := &ingest.Service{Doses: store, Now: now}
	(&httpapi.Facility{
		Auth: auth, Facilities: store, Ingest: ing,
		Doses: store, Certs: store,
		Signer:    runs,
		Worklists: worklistAdapter{}, Now: now,
	}).Routes(r)
	(&httpapi.Corrections{Auth: auth, Facilities: store, Doses: store, Ingest: ing, Audit: auditLog, Now: now}).Routes(r)
	(&httpapi.Registry{Auth: auth, Doses: store, Worklists: worklistAdapter{}, Audit: auditLog, Now: now}).Routes(r)
	(&httpapi.Public{
		Lookup: &lookup.Service{Certs: store}, Verifier: verdicts{&verification.Service{Trust: central.TrustList, Now: now}},
		TrustList: func(context.Context) ([]byte, error) { return central.TrustList.MarshalJSON() },
		RenderQR:  func(hc1 string) ([]byte, error) { return qr.PNG(hc1) }, Limiter: limiter, Now: now,
	}).Routes(r)
	return &fixture{router: r, store: store, queue: queue, keys: apiKeys, audit: auditLog, events: events}
}

// worklistAdapter is the facility API's Worklists port over the worklist package, as the
// system wires it (shared/wire imports this package, so its adapter cannot be used here).
type worklistAdapter struct{}

func (w worklistAdapter) Write(out io.Writer, format string, doses []vaxpass.Dose) error {
	return w.write(out, format, doses, false)
}

func (w worklistAdapter) WriteDisclosed(out io.Writer, doses []vaxpass.Dose) error {
	return w.write(out, "csv", doses, true)
}

func (worklistAdapter) write(out io.Writer, format string, doses []vaxpass.Dose, disclose bool) error {
	rows := func(yield func(worklist.Row) bool) {
		for _, d := range doses {
			if !yield(worklist.Row{Facility: d.FacilityID, Record: d.Record, Result: d.Match, Disclose: disclose}) {
				return
			}
		}
	}
	var err error
	switch format {
	case "csv":
		_, err = worklist.WriteCSV(out, iter.Seq[worklist.Row](rows))
	case "xlsx":
		_, err = worklist.WriteXLSX(out, iter.Seq[worklist.Row](rows))
	default:
		err = fmt.Errorf("worklist format %q", format)
	}
	return err
}

func (worklistAdapter) ReadImport(body []byte, stored httpapi.StoredRecord) ([]httpapi.ImportRow, error) {
	return facility.Worklists{Now: func() time.Time { return today }}.ReadImport(body, stored)
}

// request is one API Gateway event, built the way the bridge builds it.
type request struct {
	method, path string // path may carry a query
	headers      map[string]string
	body         []byte
	base64       bool
}

func (rq request) event() events.APIGatewayV2HTTPRequest {
	path, rawQuery, _ := strings.Cut(rq.path, "?")
	ev := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: apigw.DefaultRouteKey, RawPath: path, RawQueryString: rawQuery,
		Headers: map[string]string{}, IsBase64Encoded: rq.base64,
	}
	if q, err := url.ParseQuery(rawQuery); err == nil && len(q) > 0 {
		ev.QueryStringParameters = map[string]string{}
		for k, v := range q {
			ev.QueryStringParameters[k] = strings.Join(v, ",")
		}
	}
	for k, v := range rq.headers {
		ev.Headers[strings.ToLower(k)] = v
	}
	ev.Body = string(rq.body)
	ev.RequestContext.HTTP.Method = rq.method
	ev.RequestContext.HTTP.Path = path
	ev.RequestContext.HTTP.SourceIP = "192.0.2.1"
	return ev
}

func (f *fixture) serve(tb testing.TB, rq request) events.APIGatewayV2HTTPResponse {
	tb.Helper()
	resp, err := f.router.Serve(context.Background(), rq.event())
	if err != nil {
		tb.Fatalf("%s %q: handler error %v", rq.method, rq.path, err)
	}
	return resp
}

// contractError decodes the contract's error body strictly: exactly {"error":{"code",
// "message","field"?}}, code and message not empty.
func contractError(resp events.APIGatewayV2HTTPResponse) (apigw.ErrorDetail, error) {
	var body struct {
		Error *struct {
			Code    *string `json:"code"`
			Message *string `json:"message"`
			Field   *string `json:"field"`
		} `json:"error"`
	}
	if ct := resp.Headers["Content-Type"]; !strings.HasPrefix(ct, "application/json") {
		return apigw.ErrorDetail{}, errorf("error answer has Content-Type %q", ct)
	}
	if resp.IsBase64Encoded {
		return apigw.ErrorDetail{}, errorf("error answer is base64-encoded")
	}
	dec := json.NewDecoder(strings.NewReader(resp.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return apigw.ErrorDetail{}, errorf("error body is not the contract's: %v", err)
	}
	if dec.More() {
		return apigw.ErrorDetail{}, errorf("error body has data after the JSON object")
	}
	switch {
	case body.Error == nil:
		return apigw.ErrorDetail{}, errorf("error body lacks \"error\"")
	case body.Error.Code == nil || *body.Error.Code == "":
		return apigw.ErrorDetail{}, errorf("error body lacks a code")
	case body.Error.Message == nil || *body.Error.Message == "":
		return apigw.ErrorDetail{}, errorf("error body lacks a message")
	case body.Error.Field != nil && *body.Error.Field == "":
		return apigw.ErrorDetail{}, errorf("error body has an empty field")
	}
	d := apigw.ErrorDetail{Code: *body.Error.Code, Message: *body.Error.Message}
	if body.Error.Field != nil {
		d.Field = *body.Error.Field
	}
	return d, nil
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// verdicts adapts the verifier to httpapi.Verifier, as the wiring does.
type verdicts struct{ v *verification.Service }

func (d verdicts) Verify(ctx context.Context, hc1 string) any { return d.v.Verify(ctx, hc1) }

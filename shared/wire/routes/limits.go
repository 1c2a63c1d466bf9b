package routes

import (
	"time"

	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/edge/httpapi"
)

// Body limits per route: what the route's largest valid request needs, so that a small
// request never costs much memory. The handlers keep their own (equal or larger) checks.
const (
	// maxHC1Body: an HC1 is a few KB (a QR code holds at most ~4.3 KB); JSON around it.
	maxHC1Body = 16 << 10
	// maxLookupBody: an ID number, a name and a date of birth.
	maxLookupBody = 4 << 10
	// maxSmallBody: corrections, revocations, signing requests and every route not listed.
	maxSmallBody = 16 << 10
	// maxSelectorBody: reprocessing selectors and redrive lists (reprocess.MaxSelectorBytes).
	maxSelectorBody = 64 << 10
)

// Concurrency pools of the expensive routes. A pool's waiters hold no body (the Bridge takes
// the slot before reading it), so waiting is cheap; past the waiters, 503 busy at once.
// Sized so that the pools' worst case fits the server's memory (tests/attacks: under
// 256 MB with every pool full): an import or an upload of 4 MB costs 15-30 MB while
// parsed (the body, the base64 event, the decoders' buffers, decoded copies), and the
// garbage collector lets the heap grow to twice what is live; verification, lookups and
// QR images are CPU work of a few KB each (2 cores).
var pools = map[string]apigw.Pool{
	"import": {Slots: 2, Waiting: 16, MaxWait: 10 * time.Second},
	"upload": {Slots: 2, Waiting: 16, MaxWait: 10 * time.Second},
	"verify": {Slots: 8, Waiting: 256, MaxWait: 2 * time.Second},
	"lookup": {Slots: 32, Waiting: 256, MaxWait: 2 * time.Second},
	"qr":     {Slots: 4, Waiting: 256, MaxWait: 2 * time.Second},
	// A PDF takes ~17 MB and ~17 ms to draw (BENCHMARKS): two at a time.
	"pdf": {Slots: 2, Waiting: 64, MaxWait: 2 * time.Second},
	// A citizen's report is a facility read and three small writes.
	"report": {Slots: 8, Waiting: 64, MaxWait: 2 * time.Second},
}

// Limits are the API's per-route limits: the same table for the embedded server (checked
// before a byte of the body is read) and for each Lambda (checked first thing on the
// event API Gateway built; the pools are per function instance there).
func Limits() apigw.Limits {
	keyed := func(max int64, pool string) apigw.RouteLimit {
		return apigw.RouteLimit{MaxBody: max, Pool: pool, Keyed: true}
	}
	return apigw.Limits{
		Default: apigw.RouteLimit{MaxBody: maxSmallBody},
		Routes: map[string]apigw.RouteLimit{
			// public
			"POST /v1/verify":                       {MaxBody: maxHC1Body, Pool: "verify"},
			"POST /v1/passports/lookup":             {MaxBody: maxLookupBody, Pool: "lookup"},
			"GET /v1/passports/{uvci}/qr.png":       {MaxBody: maxSmallBody, Pool: "qr"},
			"GET /v1/passports/{uvci}/passport.pdf": {MaxBody: maxSmallBody, Pool: "pdf"},
			"POST /v1/reports":                      {MaxBody: httpapi.MaxReportBody, Pool: "report"},
			"GET /v1/reports/{reference}":           {MaxBody: maxSmallBody, Pool: "report"},
			// facility, clerk, officer
			"POST /v1/doses":              keyed(httpapi.MaxDosesBody, "upload"),
			"POST /v1/imports":            keyed(httpapi.MaxImportBody, "import"),
			"PATCH /v1/doses/{source_id}": keyed(maxSmallBody, ""),
			"POST /v1/signatures":         keyed(maxSmallBody, ""),
			"GET /v1/doses/{source_id}":   keyed(maxSmallBody, ""),
			"GET /v1/worklist":            keyed(maxSmallBody, ""),
			"GET /v1/signatures/{run_id}": keyed(maxSmallBody, ""),
			"GET /v1/registry/records":    keyed(maxSmallBody, ""),
			"GET /v1/reports":             keyed(maxSmallBody, ""),
			// ops
			"GET /v1/ops/audit":                 keyed(maxSmallBody, ""),
			"GET /v1/stats":                     keyed(maxSmallBody, ""),
			"GET /v1/ops/reprocess":             keyed(maxSmallBody, ""),
			"GET /v1/ops/reprocess/{run_id}":    keyed(maxSmallBody, ""),
			"GET /v1/ops/dead-letters":          keyed(maxSmallBody, ""),
			"POST /v1/ops/revocations":          keyed(maxSmallBody, ""),
			"POST /v1/ops/reprocess":            keyed(maxSelectorBody, ""),
			"POST /v1/ops/dead-letters/redrive": keyed(maxSelectorBody, ""),
		},
		Pools: pools,
	}
}

// guard is the guard of a new router: the table above, 401 as the authenticator answers it.
func guard() (*apigw.Guard, error) {
	g, err := apigw.NewGuard(Limits())
	if err != nil {
		return nil, err
	}
	g.Unauthorized = httpapi.Unauthorized
	return g, nil
}

// GuardEvents tells the security events of r's guard (bodies too large, busy pools, keyed
// routes without a key) to sink. Call it at start-up, before serving.
func GuardEvents(r *apigw.Router, sink apigw.SecuritySink) {
	if g := r.Guard(); g != nil {
		g.Events = sink
	}
}

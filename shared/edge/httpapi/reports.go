package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/domain/access"
	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/stage/lookup"
	"github.com/vaxpass/vaxpass/shared/stage/report"
)

// MaxReportBody bounds POST /v1/reports: eight short fields and a note of 500 characters.
const MaxReportBody = 4 << 10

// ReportService is the citizen's report use case (report.Service).
type ReportService interface {
	Submit(ctx context.Context, in report.Input) (report.Report, error)
	Get(ctx context.Context, reference string) (report.Report, error)
	List(ctx context.Context, scope report.Scope, after string, limit int) ([]report.Report, string, error)
}

// Reports is the citizen's report: POST /v1/reports and GET /v1/reports/{reference}
// (public, limited per client like the lookup; Routes), and GET /v1/reports, the reports
// of a facility's or a clerk's commune to work through (WorklistRoutes).
type Reports struct {
	Service ReportService
	// Auth authenticates GET /v1/reports (facility and clerk keys).
	Auth    *Auth
	Limiter *apigw.Limiter
	Log     *slog.Logger
	// Events, when set, is told the security events of these routes (identity_locked).
	Events interface {
		SecurityEvent(ctx context.Context, kind, route string)
	}
}

const (
	routeReports    = "POST /v1/reports"
	routeReportGet  = "GET /v1/reports/{reference}"
	routeReportList = "GET /v1/reports"
)

// Routes registers the public routes.
func (h *Reports) Routes(r *apigw.Router) {
	limited := func(hd apigw.Handler) apigw.Handler {
		if h.Limiter == nil {
			return hd
		}
		return apigw.RateLimited(h.Limiter, apigw.ClientKey, hd)
	}
	r.Handle(routeReports, limited(h.postReport))
	r.Handle(routeReportGet, limited(h.getReport))
}

// WorklistRoutes registers GET /v1/reports (facility and clerk keys).
func (h *Reports) WorklistRoutes(r *apigw.Router) {
	r.Handle(routeReportList, h.Auth.Require(routeReportList, []access.Role{access.Facility, access.Clerk}, h.listReports))
}

// ReportAnswer is the answer of POST /v1/reports and GET /v1/reports/{reference}: the
// reference and the status, nothing of what the registry holds.
type ReportAnswer struct {
	Reference string        `json:"reference"`
	Status    report.Status `json:"status"`
}

func (h *Reports) postReport(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	var in report.Input
	if err := apigw.DecodeJSON(req, &in, apigw.DecodeOptions{MaxBytes: MaxReportBody, DisallowUnknownFields: true}); err != nil {
		return failure(h.log(), "report", err), nil
	}
	rep, err := h.Service.Submit(ctx, in)
	var fe *report.FieldError
	var locked *lookup.LockedError
	switch {
	case errors.As(err, &fe):
		return apigw.FieldError(http.StatusBadRequest, fe.Field, fe.Code, fe.Field+" "+fe.Message), nil
	case errors.As(err, &locked):
		if h.Events != nil {
			h.Events.SecurityEvent(ctx, "identity_locked", routeReports)
		}
		secs := max(1, int((locked.RetryAfter+time.Second-1)/time.Second))
		resp := apigw.Error(http.StatusTooManyRequests, "too_many_reports",
			"too many reports for this ID number; retry after "+strconv.Itoa(secs)+" seconds")
		resp.Headers["Retry-After"] = strconv.Itoa(secs)
		return resp, nil
	case err != nil:
		return failure(h.log(), "report", err), nil
	}
	return apigw.JSON(http.StatusAccepted, ReportAnswer{Reference: rep.Reference, Status: rep.Status}), nil
}

func (h *Reports) getReport(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	rep, err := h.Service.Get(ctx, apigw.PathParameter(req, "reference"))
	if err != nil {
		return failure(h.log(), "report", err), nil
	}
	resp := apigw.JSON(http.StatusOK, ReportAnswer{Reference: rep.Reference, Status: rep.Status})
	resp.Headers["Cache-Control"] = "no-store"
	return resp, nil
}

// ReportView is one report of GET /v1/reports: what the citizen typed, for the clerk or
// the facility to find and correct the dose record it is about.
type ReportView struct {
	Reference   string        `json:"reference"`
	Status      report.Status `json:"status"`
	ReceivedAt  time.Time     `json:"received_at"`
	FacilityID  string        `json:"facility_id"`
	CommuneCode string        `json:"commune_code"`
	IDNumber    string        `json:"id_number"`
	FullName    string        `json:"full_name"`
	DOB         string        `json:"dob"`
	Gender      string        `json:"gender"`
	Phone       string        `json:"phone,omitempty"`
	Note        string        `json:"note,omitempty"`
}

func (h *Reports) listReports(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return failure(h.log(), "reports", err), nil
	}
	// A facility key sees its facility's reports, a clerk key its commune's.
	var scope report.Scope
	if p.Role == access.Clerk {
		scope.CommuneCode = p.Subject
	} else {
		scope.FacilityID = p.Subject
	}
	q := req.QueryStringParameters
	limit := report.MaxList
	if l := q["limit"]; l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > report.MaxList {
			return apigw.FieldError(http.StatusBadRequest, "limit", dose.CodeRange, "limit must be 1 to "+strconv.Itoa(report.MaxList)), nil
		}
		limit = n
	}
	after := q["after"]
	if len(after) > 100 {
		return apigw.FieldError(http.StatusBadRequest, "after", dose.CodeFormat, "after must be the next cursor of the previous page"), nil
	}
	rs, next, err := h.Service.List(ctx, scope, after, limit)
	if err != nil {
		return failure(h.log(), "reports", err), nil
	}
	views := make([]ReportView, len(rs))
	for i, r := range rs {
		views[i] = ReportView{
			Reference: r.Reference, Status: r.Status, ReceivedAt: r.ReceivedAt, FacilityID: r.FacilityID, CommuneCode: r.CommuneCode,
			IDNumber: r.IDNumber, FullName: r.FullName, DOB: r.DOB, Gender: r.Gender, Phone: r.Phone, Note: r.Note,
		}
	}
	resp := apigw.JSON(http.StatusOK, struct {
		Reports []ReportView `json:"reports"`
		Next    string       `json:"next,omitempty"`
	}{views, next})
	resp.Headers["Cache-Control"] = "no-store"
	return resp, nil
}

func (h *Reports) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}

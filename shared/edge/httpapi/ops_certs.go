package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/domain/access"
	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/stage/ingest"
	"github.com/vaxpass/vaxpass/shared/stage/revocation"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Limits of the certificate-lifecycle endpoints.
const (
	maxCorrectionBody = 16 << 10
	maxRevocationBody = 4 << 10
	// AuditPage is the default page of GET /v1/ops/audit (at most audit.MaxLimit).
	AuditPage = 1000
)

// Revoker is the revocation use case.
type Revoker interface {
	Revoke(ctx context.Context, actor, uvci, reason string) (revocation.Result, error)
}

// OpsCerts is the ops API of the certificate's life (OpsAuth):
//
//	POST /v1/ops/revocations {"uvci","reason"}   revoke a certificate
//	GET  /v1/ops/audit?from&to&action&actor&after&limit&format=json|csv
type OpsCerts struct {
	Auth    *OpsAuth
	Revoker Revoker
	Audit   audit.Reader
	Log     *slog.Logger
}

// Routes registers the routes.
func (o *OpsCerts) Routes(r *apigw.Router) {
	r.Handle("POST /v1/ops/revocations", o.Auth.Wrap(o.postRevocation))
	r.Handle("GET /v1/ops/audit", o.Auth.Wrap(o.getAudit))
}

// RevocationList is GET /v1/revocations, the published list (public, cacheable).
type RevocationList struct {
	// Revocations returns the published list's JSON.
	Revocations func(ctx context.Context) ([]byte, error)
	Log         *slog.Logger
}

// Routes registers the route.
func (o *RevocationList) Routes(r *apigw.Router) {
	r.Handle("GET /v1/revocations", o.getRevocations)
}

func (o *RevocationList) log() *slog.Logger {
	if o.Log == nil {
		return slog.Default()
	}
	return o.Log
}

type revocationRequest struct {
	UVCI   string `json:"uvci"`
	Reason string `json:"reason"`
}

func (o *OpsCerts) postRevocation(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	var body revocationRequest
	if err := apigw.DecodeJSON(req, &body, apigw.DecodeOptions{MaxBytes: maxRevocationBody, DisallowUnknownFields: true}); err != nil {
		return failure(o.log(), "revoke", err), nil
	}
	if strings.TrimSpace(body.UVCI) == "" {
		return apigw.FieldError(http.StatusBadRequest, "uvci", dose.CodeRequired, "uvci is required"), nil
	}
	if err := revocation.CheckUVCI(strings.TrimSpace(body.UVCI)); err != nil {
		return apigw.FieldError(http.StatusBadRequest, "uvci", dose.CodeFormat, "uvci is not a UVCI (URN:UVCI:01:VN:...#C)"), nil
	}
	if err := revocation.CheckReason(body.Reason); err != nil {
		return apigw.FieldError(http.StatusBadRequest, "reason", dose.CodeValue,
			fmt.Sprintf("reason is required: 1 to %d characters, no control characters", revocation.MaxReason)), nil
	}
	res, err := o.Revoker.Revoke(ctx, OpsActor(ctx), body.UVCI, body.Reason)
	if err != nil {
		if errors.Is(err, vaxpass.ErrNotFound) {
			return apigw.Error(http.StatusNotFound, codeNotFound, "no certificate has this UVCI"), nil
		}
		return failure(o.log(), "revoke", err), nil
	}
	return apigw.JSON(http.StatusOK, res), nil
}

func (o *RevocationList) getRevocations(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	b, err := o.Revocations(ctx)
	if err != nil {
		return failure(o.log(), "revocations", err), nil
	}
	sum := sha256.Sum256(b)
	etag := `"` + hex.EncodeToString(sum[:16]) + `"`
	// RFC 9110 13.1.2: "*" matches any current representation; a list matches by
	// (weak) comparison of its entity tags.
	if inm := strings.TrimSpace(req.Headers["if-none-match"]); inm == "*" || (inm != "" && strings.Contains(inm, etag)) {
		return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusNotModified,
			Headers: map[string]string{"ETag": etag, "Cache-Control": "public, max-age=300"}}, nil
	}
	resp := apigw.Bytes(http.StatusOK, "application/json; charset=utf-8", b)
	// Hashes only, the same for everyone: shared caches may keep it, as the trust list.
	resp.Headers["Cache-Control"] = "public, max-age=300"
	resp.Headers["ETag"] = etag
	return resp, nil
}

// AuditPageView is the JSON answer of GET /v1/ops/audit.
type AuditPageView struct {
	Entries []audit.Entry `json:"entries"`
	Next    string        `json:"next,omitempty"`
}

func (o *OpsCerts) getAudit(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	q, format, resp := ParseAuditQuery(req.QueryStringParameters)
	if resp != nil {
		return *resp, nil
	}
	entries, next, err := o.Audit.Entries(ctx, q)
	if err != nil {
		if errors.Is(err, audit.ErrInvalid) {
			return apigw.FieldError(http.StatusBadRequest, "query", dose.CodeValue, "invalid audit query"), nil
		}
		return failure(o.log(), "audit", err), nil
	}
	if entries == nil {
		entries = []audit.Entry{}
	}
	if format == "json" {
		return apigw.JSON(http.StatusOK, AuditPageView{Entries: entries, Next: next}), nil
	}
	var buf bytes.Buffer
	w, err := audit.NewWriter(&buf, audit.FormatCSV)
	if err != nil {
		return failure(o.log(), "audit", err), nil
	}
	for _, e := range entries {
		if err := w.Write(e); err != nil {
			return failure(o.log(), "audit", err), nil
		}
	}
	if err := w.Flush(); err != nil {
		return failure(o.log(), "audit", err), nil
	}
	out := apigw.Bytes(http.StatusOK, "text/csv; charset=utf-8", buf.Bytes())
	out.Headers["Content-Disposition"] = `attachment; filename="audit.csv"`
	if next != "" {
		out.Headers["X-Next-After"] = next
	}
	return out, nil
}

// ParseAuditQuery reads the audit query parameters: from and to (RFC 3339 or YYYY-MM-DD,
// to exclusive), action, actor, after (cursor), limit (1..10000, default 1000) and format
// (json|csv). A bad parameter gives the 400 answer to send.
func ParseAuditQuery(p map[string]string) (audit.Query, string, *events.APIGatewayV2HTTPResponse) {
	q := audit.Query{Action: p["action"], Actor: p["actor"], After: p["after"], Limit: AuditPage}
	bad := func(field, msg string) (audit.Query, string, *events.APIGatewayV2HTTPResponse) {
		r := apigw.FieldError(http.StatusBadRequest, field, dose.CodeValue, msg)
		return q, "", &r
	}
	var err error
	if q.From, err = ParseAuditTime(p["from"]); err != nil {
		return bad("from", "from must be RFC 3339 or YYYY-MM-DD")
	}
	if q.To, err = ParseAuditTime(p["to"]); err != nil {
		return bad("to", "to must be RFC 3339 or YYYY-MM-DD")
	}
	if s := p["limit"]; s != "" {
		if q.Limit, err = strconv.Atoi(s); err != nil || q.Limit < 1 || q.Limit > audit.MaxLimit {
			return bad("limit", fmt.Sprintf("limit must be 1 to %d", audit.MaxLimit))
		}
	}
	format := strings.ToLower(p["format"])
	switch format {
	case "":
		format = "json"
	case "json", "csv":
	default:
		return bad("format", "format must be json or csv")
	}
	if err := q.Validate(); err != nil {
		return bad("query", strings.ReplaceAll(err.Error(), audit.ErrInvalid.Error()+": ", ""))
	}
	return q, format, nil
}

// ParseAuditTime reads RFC 3339 or a date YYYY-MM-DD (midnight UTC); "" is the zero time.
func ParseAuditTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	return time.Parse("2006-01-02", s)
}

func (o *OpsCerts) log() *slog.Logger {
	if o.Log != nil {
		return o.Log
	}
	return slog.Default()
}

// Corrections is PATCH /v1/doses/{source_id}: a facility corrects one of its stored
// records; a commune clerk (?facility_id=F) one of its commune's records, a registry
// officer (?facility_id=F) any record. The body holds the fields to change (any
// dose-record field but source_id); the corrected record is validated as an upload is, stored through the
// upload use case's correction path (the record is matched again, the facility signs
// again, and when the certificate's content changes central signing issues a new one with
// a new UVCI and revokes the old), and audited with the names of the changed fields.
type Corrections struct {
	Auth       *Auth
	Facilities FacilityReader
	Doses      DoseReader
	Ingest     Ingester
	Audit      audit.Appender
	Now        func() time.Time
	Log        *slog.Logger
}

// Routes registers the route.
func (c *Corrections) Routes(r *apigw.Router) {
	const route = "PATCH /v1/doses/{source_id}"
	// Errors in Vietnamese for a clerk's request that asks for them (codes unchanged).
	r.Handle(route, c.Auth.Require(route, []access.Role{access.Facility, access.Clerk, access.Officer},
		func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			resp, err := c.patchDose(ctx, req)
			return LocalizeError(req, resp), err
		}))
}

// correctionRequest lists the correctable fields; absent ones stay as stored.
type correctionRequest struct {
	SourceID     *string `json:"source_id"`
	FullName     *string `json:"full_name"`
	DOB          *string `json:"dob"`
	Gender       *string `json:"gender"`
	IDNumber     *string `json:"id_number"`
	Phone        *string `json:"phone"`
	Nationality  *string `json:"nationality"`
	CommuneCode  *string `json:"commune_code"`
	Vaccine      *string `json:"vaccine"`
	DoseNumber   *int    `json:"dose_number"`
	VaccinatedOn *string `json:"vaccinated_on"`
	Lot          *string `json:"lot"`
}

// apply writes the request's fields onto r and returns the names of those given.
func (b *correctionRequest) apply(r *dose.Record) []string {
	var given []string
	set := func(name string, dst *string, v *string) {
		if v != nil {
			*dst = *v
			given = append(given, name)
		}
	}
	set("full_name", &r.FullName, b.FullName)
	set("dob", &r.DOB, b.DOB)
	set("gender", &r.Gender, b.Gender)
	set("id_number", &r.IDNumber, b.IDNumber)
	set("phone", &r.Phone, b.Phone)
	set("nationality", &r.Nationality, b.Nationality)
	set("commune_code", &r.CommuneCode, b.CommuneCode)
	set("vaccine", &r.Vaccine, b.Vaccine)
	if b.DoseNumber != nil {
		r.DoseNumber = *b.DoseNumber
		given = append(given, "dose_number")
	}
	set("vaccinated_on", &r.VaccinatedOn, b.VaccinatedOn)
	set("lot", &r.Lot, b.Lot)
	return given
}

// CorrectionAnswer is the answer of PATCH /v1/doses/{source_id}.
type CorrectionAnswer struct {
	SourceID string `json:"source_id"`
	// Status is "corrected" (stored; it is matched and signed again) or "unchanged".
	Status string `json:"status"`
	// Changed names the fields whose stored value changed.
	Changed []string `json:"changed"`
}

// Statuses of CorrectionAnswer.
const (
	CorrectionStored    = "corrected"
	CorrectionUnchanged = "unchanged"
)

func (c *Corrections) patchDose(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	const route = "PATCH /v1/doses/{source_id}"
	p, err := principal(ctx)
	if err != nil {
		return failure(c.log(), route, err), nil
	}
	facilityID := req.QueryStringParameters["facility_id"]
	if p.Role == access.Facility {
		fac, err := facilityOf(ctx, c.Facilities, p)
		if err != nil {
			return failure(c.log(), route, err), nil
		}
		if facilityID != "" && facilityID != fac.ID {
			// Another facility's record is as unknown as no record.
			return failure(c.log(), route, fmt.Errorf("dose of another facility: %w", vaxpass.ErrNotFound)), nil
		}
		facilityID = fac.ID
	} else if facilityID == "" {
		return apigw.FieldError(http.StatusBadRequest, "facility_id", dose.CodeRequired, "facility_id is required: the facility whose record this is"), nil
	} else if err := access.CheckSubject(access.Facility, facilityID); err != nil {
		return apigw.FieldError(http.StatusBadRequest, "facility_id", dose.CodeFormat, "facility_id must be 1-64 of A-Z a-z 0-9 _ -"), nil
	}
	sid := apigw.PathParameter(req, "source_id")
	if sid == "" || utf8.RuneCountInString(sid) > dose.MaxSourceID {
		return apigw.FieldError(http.StatusBadRequest, "source_id", dose.CodeFormat, "source_id must be 1 to 64 characters"), nil
	}
	var body correctionRequest
	if err := apigw.DecodeJSON(req, &body, apigw.DecodeOptions{MaxBytes: maxCorrectionBody, DisallowUnknownFields: true}); err != nil {
		return failure(c.log(), route, err), nil
	}
	if body.SourceID != nil && strings.TrimSpace(*body.SourceID) != sid {
		return apigw.FieldError(http.StatusBadRequest, "source_id", dose.CodeValue, "source_id cannot be changed: it identifies the record"), nil
	}
	stored, err := c.Doses.GetDose(ctx, vaxpass.DoseKey{FacilityID: facilityID, SourceID: sid})
	if err != nil {
		return failure(c.log(), route, err), nil
	}
	if p.Role == access.Clerk && stored.Record.CommuneCode != p.Subject {
		// Outside the clerk's commune: not found, not forbidden (nothing is told about
		// what exists elsewhere).
		return failure(c.log(), route, fmt.Errorf("dose outside the clerk's commune: %w", vaxpass.ErrNotFound)), nil
	}
	rec := stored.Record
	if given := body.apply(&rec); len(given) == 0 {
		return apigw.FieldError(http.StatusBadRequest, "body", dose.CodeRequired, "give at least one dose-record field to correct"), nil
	}
	rec.Normalize()
	now := c.Now().UTC()
	if errs := rec.Validate(time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)); len(errs) > 0 {
		return apigw.FieldError(http.StatusBadRequest, errs[0].Field, errs[0].Code, errs[0].Field+" "+errs[0].Message), nil
	}
	changed := changedFields(stored.Record, rec)
	if len(changed) == 0 {
		return apigw.JSON(http.StatusOK, CorrectionAnswer{SourceID: sid, Status: CorrectionUnchanged, Changed: []string{}}), nil
	}
	// Audited before it is stored: a correction is never stored unaudited (a failure
	// in between leaves an entry for an attempt, which the caller's retry repeats).
	note := audit.Entry{At: now, Actor: auditActor(p), Action: audit.ActionCorrection,
		Doses: []string{audit.DoseKey(facilityID, sid)}, Facilities: []string{facilityID},
		Params: map[string]string{"fields": strings.Join(changed, ","), "key_id": p.KeyID}}
	if err := c.Audit.Append(ctx, note); err != nil {
		return failure(c.log(), route, fmt.Errorf("audit correction: %w", err)), nil
	}
	rep, err := c.Ingest.Submit(ctx, facilityID, []ingest.Item{{Record: rec, Corrected: true}})
	if err != nil {
		return failure(c.log(), route, err), nil
	}
	switch res := rep.Results[0]; res.Status {
	case ingest.Accepted:
		return apigw.JSON(http.StatusOK, CorrectionAnswer{SourceID: sid, Status: CorrectionStored, Changed: changed}), nil
	case ingest.Duplicate:
		// A concurrent identical correction got there first.
		return apigw.JSON(http.StatusOK, CorrectionAnswer{SourceID: sid, Status: CorrectionUnchanged, Changed: []string{}}), nil
	default:
		if len(res.Errors) > 0 {
			e := res.Errors[0]
			return apigw.FieldError(http.StatusBadRequest, e.Field, e.Code, e.Field+" "+e.Message), nil
		}
		return failure(c.log(), route, fmt.Errorf("correction of %s: unexpected status %q", sid, res.Status)), nil
	}
}

// changedFields names the dose-record fields that differ between a and b.
func changedFields(a, b dose.Record) []string {
	var out []string
	for _, f := range []struct {
		name string
		x, y string
	}{
		{"full_name", a.FullName, b.FullName}, {"dob", a.DOB, b.DOB}, {"gender", a.Gender, b.Gender},
		{"id_number", a.IDNumber, b.IDNumber}, {"phone", a.Phone, b.Phone}, {"nationality", a.Nationality, b.Nationality},
		{"commune_code", a.CommuneCode, b.CommuneCode}, {"vaccine", a.Vaccine, b.Vaccine},
		{"dose_number", strconv.Itoa(a.DoseNumber), strconv.Itoa(b.DoseNumber)},
		{"vaccinated_on", a.VaccinatedOn, b.VaccinatedOn}, {"lot", a.Lot, b.Lot},
	} {
		if f.x != f.y {
			out = append(out, f.name)
		}
	}
	return out
}

func (c *Corrections) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.Default()
}

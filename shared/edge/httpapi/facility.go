package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/domain/access"
	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/stage/ingest"
	"github.com/vaxpass/vaxpass/shared/stage/report"
	"github.com/vaxpass/vaxpass/shared/stage/signing"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Limits of the facility API.
const (
	// MaxDosesBody bounds POST /v1/doses: 1,000 records of at most ~2 KB each, well under
	// Lambda's 6 MB payload limit.
	MaxDosesBody = 4 << 20
	// MaxImportBody bounds POST /v1/imports (.xlsx, base64 in the event: 6 MB after encoding).
	MaxImportBody = 4 << 20
	// WorklistPage is the most records one worklist answer holds.
	WorklistPage = 10000
)

// Facilities is the store's former facility-key lookup; facilities authenticate through
// Auth now (a key of role facility whose subject is the facility ID).
type Facilities interface {
	FacilityByKeyHash(ctx context.Context, hash []byte) (vaxpass.Facility, error)
}

// FacilityReader reads a registered facility (the facility of a facility key).
type FacilityReader interface {
	GetFacility(ctx context.Context, id string) (vaxpass.Facility, error)
}

// Ingester is the upload use case.
type Ingester interface {
	Submit(ctx context.Context, facilityID string, items []ingest.Item) (ingest.Report, error)
}

// DoseReader reads stored doses of a facility.
type DoseReader interface {
	GetDose(ctx context.Context, key vaxpass.DoseKey) (vaxpass.Dose, error)
	// ListByStatus lists the facility's doses in a status, by source_id after the cursor.
	ListByStatus(ctx context.Context, facilityID string, status match.Status, after string, limit int) ([]vaxpass.Dose, error)
	// ListByCommune lists the doses of every facility whose record's commune_code is
	// commune and whose stored match status is status, by (facility_id, source_id)
	// strictly after after (zero: from the start), at most limit.
	ListByCommune(ctx context.Context, commune string, status match.Status, after vaxpass.DoseKey, limit int) ([]vaxpass.Dose, error)
}

// CertReader reads a person's active certificate.
type CertReader interface {
	ActiveCertificate(ctx context.Context, personID string) (vaxpass.Certificate, error)
}

// FacilitySigner is the facility signing use case as runs (signing.Runs).
type FacilitySigner interface {
	// Start signs in the call for at most inCall and queues the rest.
	Start(ctx context.Context, facilityID string, prio signing.Priority, inCall time.Duration) (signing.Run, error)
	Get(ctx context.Context, runID string) (signing.Run, error)
}

// SignInCall is how long POST /v1/signatures signs (by default) before it hands the rest to a run
// and answers 202: far inside API Gateway's 29-second limit, and the answer of a
// facility with a large backlog comes within seconds.
const SignInCall = 5 * time.Second

// ErrImportTooLarge marks an import refused for one of its caps (rows, cell, inflated
// size): a security event besides the 400.
var ErrImportTooLarge = errors.New("import over a cap")

// Worklists renders worklists and reads Excel imports.
type Worklists interface {
	// Write renders doses in format "csv" or "xlsx" as a facility or a clerk sees them:
	// each row with its facility_id, candidates as their count (no registry value).
	Write(w io.Writer, format string, doses []vaxpass.Dose) error
	// ReadImport reads an .xlsx import into rows (row numbers set); a worklist sent back
	// is read against stored (each row the stored record with its corrected_* cells
	// applied). A file that cannot be read at all is an error wrapping vaxpass.ErrInvalid.
	ReadImport(body []byte, stored StoredRecord) ([]ImportRow, error)
}

// StoredRecord reads the stored record a worklist row corrects, by the row's facility_id
// ("" when the sheet has none) and source_id: found is false when there is none the
// caller may change; err is a store failure.
type StoredRecord func(facilityID, sourceID string) (rec dose.Record, found bool, err error)

// ImportRow is one row of an import.
type ImportRow struct {
	ingest.Item
	// FromStore: Record is a stored record (of FacilityID) with the row's corrections.
	FromStore  bool
	FacilityID string
	// Warnings name read-only cells that differ from the stored record (never written).
	Warnings []dose.FieldError
}

// ImportResult is a row's result in the answer of POST /v1/imports: the upload's result
// and the warnings of a worklist row.
type ImportResult struct {
	ingest.Result
	Warnings []dose.FieldError `json:"warnings,omitempty"`
}

// ImportReport is the answer of POST /v1/imports: an upload's report, rows with warnings.
type ImportReport struct {
	Accepted   int            `json:"accepted"`
	Duplicates int            `json:"duplicates"`
	Rejected   int            `json:"rejected"`
	Results    []ImportResult `json:"results"`
}

// Facility is the facility API (facility keys; the worklist also with clerk keys).
type Facility struct {
	Auth       *Auth
	Facilities FacilityReader
	Ingest     Ingester
	Doses      DoseReader
	Certs      CertReader
	Signer     FacilitySigner
	Worklists  Worklists
	// Reports lists citizens' reports for GET /v1/worklist?status=REPORTED (nil: not served).
	Reports interface {
		List(ctx context.Context, scope report.Scope, after string, limit int) ([]report.Report, string, error)
	}
	Now func() time.Time
	Log *slog.Logger
	// SignInCall bounds the signing POST /v1/signatures does before it answers 202
	// (default SignInCall); the first page is always signed in the call.
	SignInCall time.Duration
}

// Routes registers the facility API's routes.
func (f *Facility) Routes(r *apigw.Router) {
	facility := []access.Role{access.Facility}
	r.Handle("POST /v1/doses", f.authed("POST /v1/doses", facility, f.postDoses))
	// A clerk sends back the commune's worklist (records of the commune only).
	r.Handle("POST /v1/imports", f.authed("POST /v1/imports", []access.Role{access.Facility, access.Clerk}, f.postImport))
	r.Handle("GET /v1/doses/{source_id}", f.authed("GET /v1/doses/{source_id}", facility, f.getDose))
	r.Handle("GET /v1/worklist", f.authed("GET /v1/worklist", []access.Role{access.Facility, access.Clerk}, f.getWorklist))
	r.Handle("POST /v1/signatures", f.authed("POST /v1/signatures", facility, f.postSignatures))
	r.Handle("GET /v1/signatures/{run_id}", f.authed("GET /v1/signatures/{run_id}", facility, f.getSignatures))
}

// facilityHandler serves a request of a facility key (fac is its facility) or, where the
// route allows it, of a clerk (fac is zero: the principal says who).
type facilityHandler func(ctx context.Context, fac vaxpass.Facility, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

func (f *Facility) authed(route string, roles []access.Role, h facilityHandler) apigw.Handler {
	return f.Auth.Require(route, roles, func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		var fac vaxpass.Facility
		if p, _ := access.PrincipalFrom(ctx); p.Role == access.Facility {
			var err error
			if fac, err = facilityOf(ctx, f.Facilities, p); err != nil {
				return failure(f.log(), route, err), nil
			}
		}
		resp, err := h(ctx, fac, req)
		if err != nil {
			resp = failure(f.log(), route, err)
		}
		return LocalizeError(req, resp), nil
	})
}

// facilityOf is the facility of a facility principal; a key of a facility no longer
// registered opens nothing.
func facilityOf(ctx context.Context, facilities FacilityReader, p access.Principal) (vaxpass.Facility, error) {
	fac, err := facilities.GetFacility(ctx, p.Subject)
	if errors.Is(err, vaxpass.ErrNotFound) {
		return fac, fmt.Errorf("%w: facility key %s of an unknown facility", vaxpass.ErrUnauthorized, p.KeyID)
	}
	return fac, err
}

type dosesRequest struct {
	Records []json.RawMessage `json:"records"`
}

func (f *Facility) postDoses(ctx context.Context, fac vaxpass.Facility, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	var body dosesRequest
	if err := apigw.DecodeJSON(req, &body, apigw.DecodeOptions{MaxBytes: MaxDosesBody, DisallowUnknownFields: true}); err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if body.Records == nil {
		return events.APIGatewayV2HTTPResponse{}, fieldError("records", dose.CodeRequired, "records is required: an array of dose records")
	}
	if len(body.Records) == 0 {
		return events.APIGatewayV2HTTPResponse{}, fieldError("records", dose.CodeRequired, "records must hold at least one record")
	}
	if len(body.Records) > ingest.MaxBatch {
		return events.APIGatewayV2HTTPResponse{}, fieldError("records", dose.CodeRange, fmt.Sprintf("at most %d records per request", ingest.MaxBatch))
	}
	items := make([]ingest.Item, len(body.Records))
	for i, raw := range body.Records {
		items[i] = DecodeRecord(raw)
	}
	rep, err := f.Ingest.Submit(ctx, fac.ID, items)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	localizeReport(req, &rep)
	return apigw.JSON(http.StatusOK, rep), nil
}

// DecodeRecord decodes one record of an upload on its own, so that a record of the wrong
// shape is rejected alone with the field it got wrong.
func DecodeRecord(raw json.RawMessage) ingest.Item {
	var it ingest.Item
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(&it.Record)
	if err == nil {
		return it
	}
	// Keep what can be read (source_id above all, so the result names the record).
	var loose map[string]json.RawMessage
	if json.Unmarshal(raw, &loose) == nil {
		var sid string
		if json.Unmarshal(loose["source_id"], &sid) == nil {
			it.Record.SourceID = sid
		}
	}
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &typeErr) && typeErr.Field != "":
		it.Errors = append(it.Errors, dose.FieldError{Field: typeErr.Field, Code: "invalid_type", Message: "must be " + jsonKind(typeErr.Type.Kind().String())})
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		it.Errors = append(it.Errors, dose.FieldError{Field: name, Code: "unknown_field", Message: "is not a dose record field"})
	default:
		it.Errors = append(it.Errors, dose.FieldError{Field: "record", Code: "invalid_type", Message: "must be a JSON object of dose record fields"})
	}
	return it
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int64":
		return "an integer"
	case "string":
		return "a string"
	}
	return "of another type"
}

func (f *Facility) postImport(ctx context.Context, fac vaxpass.Facility, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	ct := req.Headers["content-type"]
	if !strings.HasPrefix(ct, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet") {
		return events.APIGatewayV2HTTPResponse{}, &apigw.RequestError{Status: http.StatusUnsupportedMediaType, Code: "unsupported_media_type",
			Field: "content-type", Message: "send an .xlsx file as application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", Err: vaxpass.ErrInvalid}
	}
	body, err := apigw.RequestBody(req, MaxImportBody)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	p, _ := access.PrincipalFrom(ctx)
	rows, err := f.Worklists.ReadImport(body, f.storedRecord(ctx, fac, p))
	if err != nil {
		if errors.Is(err, ErrImportTooLarge) && f.Auth != nil && f.Auth.Events != nil {
			f.Auth.Events.SecurityEvent(ctx, "import_refused", "POST /v1/imports")
		}
		if errors.Is(err, vaxpass.ErrInvalid) {
			return events.APIGatewayV2HTTPResponse{}, fieldError("body", "invalid_file", strings.TrimPrefix(err.Error(), vaxpass.ErrInvalid.Error()+": "))
		}
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if len(rows) > ingest.MaxBatch {
		return events.APIGatewayV2HTTPResponse{}, fieldError("body", dose.CodeRange, fmt.Sprintf("at most %d rows per import", ingest.MaxBatch))
	}
	// A facility's rows are its own; a clerk's go to the facility of each stored record
	// (a clerk creates nothing: a row that is no stored record of the commune is refused).
	groups := map[string][]int{}
	var order []string
	for i := range rows {
		r := &rows[i]
		facID := fac.ID
		if p.Role == access.Clerk {
			if len(r.Errors) == 0 && !r.FromStore {
				r.Errors = []dose.FieldError{{Field: "source_id", Code: "not_found", Message: "a clerk sends back the commune's worklist: this row is no stored record of the commune"}}
			}
			facID = r.FacilityID
			if len(r.Errors) > 0 {
				facID = "" // judged without the store
			}
		}
		if _, ok := groups[facID]; !ok {
			order = append(order, facID)
		}
		groups[facID] = append(groups[facID], i)
	}
	out := ImportReport{Results: make([]ImportResult, len(rows))}
	for _, facID := range order {
		idx := groups[facID]
		items := make([]ingest.Item, len(idx))
		for j, i := range idx {
			items[j] = rows[i].Item
		}
		rep, err := f.Ingest.Submit(ctx, facID, items)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		out.Accepted += rep.Accepted
		out.Duplicates += rep.Duplicates
		out.Rejected += rep.Rejected
		for j, i := range idx {
			out.Results[i] = ImportResult{Result: rep.Results[j], Warnings: rows[i].Warnings}
		}
	}
	localizeImport(req, &out)
	return apigw.JSON(http.StatusOK, out), nil
}

// storedRecord reads the stored record a worklist row corrects: a facility's own records,
// a clerk's commune's records of any facility (any other reads as none, as GET
// /v1/worklist would never have listed it).
func (f *Facility) storedRecord(ctx context.Context, fac vaxpass.Facility, p access.Principal) StoredRecord {
	return func(facilityID, sourceID string) (dose.Record, bool, error) {
		switch {
		case p.Role == access.Clerk && facilityID == "":
			return dose.Record{}, false, nil
		case p.Role != access.Clerk:
			if facilityID != "" && facilityID != fac.ID {
				return dose.Record{}, false, nil
			}
			facilityID = fac.ID
		}
		d, err := f.Doses.GetDose(ctx, vaxpass.DoseKey{FacilityID: facilityID, SourceID: sourceID})
		if errors.Is(err, vaxpass.ErrNotFound) {
			return dose.Record{}, false, nil
		}
		if err != nil {
			return dose.Record{}, false, fmt.Errorf("read dose to correct: %w", err)
		}
		if p.Role == access.Clerk && d.Record.CommuneCode != p.Subject {
			return dose.Record{}, false, nil
		}
		return d.Record, true, nil
	}
}

// DoseView is a record as a facility or a clerk sees it: the answer of GET
// /v1/doses/{source_id} and a worklist's record.
type DoseView struct {
	// FacilityID names the record's facility in a clerk's worklist (its commune's records
	// of every facility); a facility's answers leave it out.
	FacilityID string `json:"facility_id,omitempty"`
	dose.Record
	Match       MatchView `json:"match"`
	Certificate *CertView `json:"certificate,omitempty"`
}

// MatchView is a match result without registry values (a facility's or a clerk's view):
// the candidates only counted, the registry's corrections only of a VERIFIED record (the
// registry's spelling of the person's own details once ID, name and date of birth agree).
type MatchView struct {
	Status    match.Status      `json:"status"`
	Reasons   []string          `json:"reasons"`
	Corrected map[string]string `json:"corrected,omitempty"`
	// CandidatesCount is how many registry people the record may be (the registry
	// officer sees who they are).
	CandidatesCount int `json:"candidates_count,omitempty"`
}

// RedactMatch is the view of r a facility or a clerk may have.
func RedactMatch(r match.Result) MatchView {
	v := MatchView{Status: r.Status, Reasons: r.Reasons, CandidatesCount: len(r.Candidates)}
	if v.Reasons == nil {
		v.Reasons = []string{}
	}
	if r.Status == match.Verified {
		v.Corrected = r.Corrected
	}
	return v
}

// CertView is a certificate as the facility sees it.
type CertView struct {
	UVCI      string    `json:"uvci"`
	Status    string    `json:"status"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (f *Facility) getDose(ctx context.Context, fac vaxpass.Facility, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	sid := apigw.PathParameter(req, "source_id")
	if sid == "" || utf8.RuneCountInString(sid) > dose.MaxSourceID {
		return events.APIGatewayV2HTTPResponse{}, fieldError("source_id", dose.CodeFormat, "must be 1 to 64 characters")
	}
	d, err := f.Doses.GetDose(ctx, vaxpass.DoseKey{FacilityID: fac.ID, SourceID: sid})
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	view := DoseView{Record: d.Record, Match: RedactMatch(d.Match)}
	if d.PersonID != "" && !d.SignedAt.IsZero() {
		c, err := f.Certs.ActiveCertificate(ctx, d.PersonID)
		switch {
		case err == nil:
			view.Certificate = &CertView{UVCI: c.UVCI, Status: c.StatusAt(f.Now()), IssuedAt: c.IssuedAt, ExpiresAt: c.ExpiresAt}
		case !errors.Is(err, vaxpass.ErrNotFound):
			return events.APIGatewayV2HTTPResponse{}, err
		}
	}
	return apigw.JSON(http.StatusOK, view), nil
}

var worklistFormats = map[string]string{
	"json": "application/json; charset=utf-8",
	"csv":  "text/csv; charset=utf-8",
	"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}

// worklistStatus reads the status parameter: required, one of allowed (case-insensitive).
func worklistStatus(q map[string]string, allowed ...match.Status) (match.Status, error) {
	names := make([]string, len(allowed))
	for i, s := range allowed {
		names[i] = string(s)
	}
	status := match.Status(strings.ToUpper(q["status"]))
	switch {
	case status == "":
		return "", fieldError("status", dose.CodeRequired, "status is required: one of "+strings.Join(names, ", "))
	case !slices.Contains(allowed, status):
		return "", fieldError("status", dose.CodeValue, "must be one of "+strings.Join(names, ", "))
	}
	return status, nil
}

func (f *Facility) getWorklist(ctx context.Context, fac vaxpass.Facility, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	q := req.QueryStringParameters
	status, err := worklistStatus(q, match.Pending, match.Verified, match.NoID, match.InvalidID, match.NotFound, match.Mismatch, report.StatusReported)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	format := strings.ToLower(q["format"])
	if format == "" {
		format = "json"
	}
	ct, ok := worklistFormats[format]
	if !ok {
		return events.APIGatewayV2HTTPResponse{}, fieldError("format", dose.CodeValue, "must be json, csv or xlsx")
	}
	p, err := principal(ctx)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	var doses []vaxpass.Dose
	var next string
	if status == report.StatusReported {
		// Citizens' reports: rows of their own (no dose record, no match), listed with the
		// facility's or the commune's records so the clerk sees them where they work.
		if f.Reports == nil {
			return events.APIGatewayV2HTTPResponse{}, fieldError("status", dose.CodeValue, "REPORTED is not served here")
		}
		scope := report.Scope{FacilityID: fac.ID}
		if p.Role == access.Clerk {
			scope = report.Scope{CommuneCode: p.Subject}
		}
		rs, n, err := f.Reports.List(ctx, scope, q["after"], WorklistPage)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		for _, r := range rs {
			doses = append(doses, vaxpass.Dose{FacilityID: r.FacilityID, Record: r.Record(), Match: r.Result()})
		}
		next = n
	} else if p.Role == access.Clerk {
		// The clerk's commune's records of every facility, by (facility_id, source_id);
		// the cursor is "facility_id/source_id" (facility IDs hold no "/").
		var after vaxpass.DoseKey
		if a := q["after"]; a != "" {
			fid, sid, ok := strings.Cut(a, "/")
			if !ok || fid == "" || sid == "" {
				return events.APIGatewayV2HTTPResponse{}, fieldError("after", dose.CodeFormat, "must be the next cursor of the previous page (facility_id/source_id)")
			}
			after = vaxpass.DoseKey{FacilityID: fid, SourceID: sid}
		}
		if doses, err = f.Doses.ListByCommune(ctx, p.Subject, status, after, WorklistPage); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		if len(doses) == WorklistPage {
			last := doses[len(doses)-1]
			next = last.FacilityID + "/" + last.SourceID
		}
	} else {
		if doses, err = f.Doses.ListByStatus(ctx, fac.ID, status, q["after"], WorklistPage); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		if len(doses) == WorklistPage {
			next = doses[len(doses)-1].SourceID
		}
	}
	resp := events.APIGatewayV2HTTPResponse{}
	if format == "json" {
		views := make([]DoseView, len(doses))
		for i, d := range doses {
			views[i] = DoseView{Record: d.Record, Match: RedactMatch(d.Match)}
			if p.Role == access.Clerk {
				views[i].FacilityID = d.FacilityID
			}
		}
		page := struct {
			Records []DoseView `json:"records"`
			Next    string     `json:"next,omitempty"`
		}{Records: views, Next: next}
		resp = apigw.JSON(http.StatusOK, page)
	} else {
		var buf bytes.Buffer
		if err := f.Worklists.Write(&buf, format, doses); err != nil {
			return resp, fmt.Errorf("render worklist: %w", err)
		}
		resp = apigw.Bytes(http.StatusOK, ct, buf.Bytes())
		resp.Headers["Content-Disposition"] = fmt.Sprintf(`attachment; filename="worklist-%s.%s"`, strings.ToLower(string(status)), format)
		if next != "" {
			resp.Headers["X-Next-After"] = next
		}
	}
	resp.Headers["Cache-Control"] = "no-store"
	return resp, nil
}

// SigningRunView is the answer of GET /v1/signatures/{run_id} and a 202 of POST.
type SigningRunView struct {
	RunID   string `json:"run_id"`
	Status  string `json:"status"`
	Signed  int    `json:"signed"`
	Waiting int    `json:"waiting"`
}

func (f *Facility) postSignatures(ctx context.Context, fac vaxpass.Facility, _ events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	inCall := f.SignInCall
	if inCall <= 0 {
		inCall = SignInCall
	}
	run, err := f.Signer.Start(ctx, fac.ID, signing.Interactive, inCall)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	switch run.Status {
	case signing.RunDone:
		return apigw.JSON(http.StatusOK, signing.SignResult{Signed: run.Signed, Waiting: run.Waiting}), nil
	case signing.RunFailed:
		return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("signing run %s: %s", run.ID, run.Error)
	}
	return apigw.JSON(http.StatusAccepted, viewOfRun(run)), nil
}

func (f *Facility) getSignatures(ctx context.Context, fac vaxpass.Facility, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	id := apigw.PathParameter(req, "run_id")
	if id == "" || len(id) > 64 {
		return events.APIGatewayV2HTTPResponse{}, fieldError("run_id", dose.CodeFormat, "must be 1 to 64 characters")
	}
	run, err := f.Signer.Get(ctx, id)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	if run.FacilityID != fac.ID {
		// Another facility's run is as unknown as no run: its existence is not told.
		return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("signing run: %w", vaxpass.ErrNotFound)
	}
	return apigw.JSON(http.StatusOK, viewOfRun(run)), nil
}

func viewOfRun(r signing.Run) SigningRunView {
	return SigningRunView{RunID: r.ID, Status: string(r.Status), Signed: r.Signed, Waiting: r.Waiting}
}

func (f *Facility) log() *slog.Logger {
	if f.Log != nil {
		return f.Log
	}
	return slog.Default()
}

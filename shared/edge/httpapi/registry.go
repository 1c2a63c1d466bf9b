package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/domain/access"
	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/stage/audit"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// RegistryPage is the most records one answer of GET /v1/registry/records holds: each
// answer's audit entry names every record it disclosed, and stays a small item.
const RegistryPage = 1000

// ActionDisclosure is the audit action of a registry officer's list: registry values
// (candidates) disclosed.
const ActionDisclosure = "registry_disclose"

// DisclosureWriter renders the registry officer's list as CSV: the worklist's columns
// with the candidates in full.
type DisclosureWriter interface {
	WriteDisclosed(w io.Writer, doses []vaxpass.Dose) error
}

// Registry is the registry officer's API (officer key): the records that failed
// matching, with their candidates in full (registry ID, name, date of birth, gender,
// score), each answer audited (who, the filter, how many; never personal data).
//
//	GET /v1/registry/records?status=MISMATCH|NOT_FOUND|NO_ID|INVALID_ID
//	    &commune_code=C | &facility_id=F  (exactly one)  &after&format=json|csv
type Registry struct {
	Auth      *Auth
	Doses     DoseReader
	Worklists DisclosureWriter
	Audit     audit.Appender
	Now       func() time.Time
	Log       *slog.Logger
}

// RegistryRecordView is one record of the officer's list.
type RegistryRecordView struct {
	FacilityID string `json:"facility_id"`
	dose.Record
	Match match.Result `json:"match"`
}

// Routes registers the route.
func (g *Registry) Routes(r *apigw.Router) {
	const route = "GET /v1/registry/records"
	r.Handle(route, g.Auth.Require(route, []access.Role{access.Officer}, func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		resp, err := g.getRecords(ctx, req)
		if err != nil {
			return failure(g.log(), route, err), nil
		}
		return resp, nil
	}))
}

func (g *Registry) getRecords(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	p, err := principal(ctx)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	q := req.QueryStringParameters
	status, err := worklistStatus(q, match.Mismatch, match.NotFound, match.NoID, match.InvalidID)
	if err != nil {
		return events.APIGatewayV2HTTPResponse{}, err
	}
	format := strings.ToLower(q["format"])
	switch format {
	case "":
		format = "json"
	case "json", "csv":
	default:
		return events.APIGatewayV2HTTPResponse{}, fieldError("format", dose.CodeValue, "must be json or csv")
	}
	commune, facilityID := q["commune_code"], q["facility_id"]
	params := map[string]string{"status": string(status), "format": format, "key_id": p.KeyID}
	var doses []vaxpass.Dose
	var next string
	switch {
	case commune != "" && facilityID != "":
		return events.APIGatewayV2HTTPResponse{}, fieldError("facility_id", dose.CodeValue, "give commune_code or facility_id, not both")
	case commune != "":
		if access.CheckSubject(access.Clerk, commune) != nil {
			return events.APIGatewayV2HTTPResponse{}, fieldError("commune_code", dose.CodeFormat, "must be a commune code of 5 to 7 digits")
		}
		var after vaxpass.DoseKey
		if a := q["after"]; a != "" {
			fid, sid, ok := strings.Cut(a, "/")
			if !ok || fid == "" || sid == "" {
				return events.APIGatewayV2HTTPResponse{}, fieldError("after", dose.CodeFormat, "must be the next cursor of the previous page (facility_id/source_id)")
			}
			after = vaxpass.DoseKey{FacilityID: fid, SourceID: sid}
		}
		if doses, err = g.Doses.ListByCommune(ctx, commune, status, after, RegistryPage); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		if len(doses) == RegistryPage {
			last := doses[len(doses)-1]
			next = last.FacilityID + "/" + last.SourceID
		}
		params["commune_code"] = commune
	case facilityID != "":
		if access.CheckSubject(access.Facility, facilityID) != nil {
			return events.APIGatewayV2HTTPResponse{}, fieldError("facility_id", dose.CodeFormat, "must be 1-64 of A-Z a-z 0-9 _ -")
		}
		if doses, err = g.Doses.ListByStatus(ctx, facilityID, status, q["after"], RegistryPage); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		if len(doses) == RegistryPage {
			next = doses[len(doses)-1].SourceID
		}
		params["facility_id"] = facilityID
	default:
		return events.APIGatewayV2HTTPResponse{}, fieldError("commune_code", dose.CodeRequired, "commune_code or facility_id is required: the records of one commune or of one facility")
	}
	if q["after"] != "" {
		params["after"] = q["after"]
	}

	// Audited before anything is disclosed: a list is never answered unaudited.
	candidates := 0
	keys := make([]string, len(doses))
	for i, d := range doses {
		candidates += len(d.Match.Candidates)
		keys[i] = audit.DoseKey(d.FacilityID, d.SourceID)
	}
	note := audit.Entry{At: g.Now().UTC(), Actor: auditActor(p), Action: ActionDisclosure, Doses: keys, Params: params,
		Counts: map[string]int64{"records": int64(len(doses)), "candidates": int64(candidates)}}
	if facilityID != "" {
		note.Facilities = []string{facilityID}
	}
	if err := g.Audit.Append(ctx, note); err != nil {
		return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("audit disclosure: %w", err)
	}

	var resp events.APIGatewayV2HTTPResponse
	if format == "json" {
		views := make([]RegistryRecordView, len(doses))
		for i, d := range doses {
			views[i] = RegistryRecordView{FacilityID: d.FacilityID, Record: d.Record, Match: d.Match}
			if views[i].Match.Reasons == nil {
				views[i].Match.Reasons = []string{}
			}
		}
		resp = apigw.JSON(http.StatusOK, struct {
			Records []RegistryRecordView `json:"records"`
			Next    string               `json:"next,omitempty"`
		}{Records: views, Next: next})
	} else {
		var buf bytes.Buffer
		if err := g.Worklists.WriteDisclosed(&buf, doses); err != nil {
			return resp, fmt.Errorf("render the officer's list: %w", err)
		}
		resp = apigw.Bytes(http.StatusOK, "text/csv; charset=utf-8", buf.Bytes())
		resp.Headers["Content-Disposition"] = `attachment; filename="registry-` + strings.ToLower(string(status)) + `.csv"`
		if next != "" {
			resp.Headers["X-Next-After"] = next
		}
	}
	resp.Headers["Cache-Control"] = "no-store"
	return resp, nil
}

func (g *Registry) log() *slog.Logger {
	if g.Log != nil {
		return g.Log
	}
	return slog.Default()
}

package httpapi

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/stage/ingest"
)

// Vietnamese for clerks: a request whose Accept-Language prefers vi gets its row errors and
// error messages in Vietnamese. Codes and field names never change (programs read them);
// a message the catalogue (dose.MessageVI) does not know stays English.

// WantsVietnamese reports whether the request's Accept-Language ranks Vietnamese first
// ("vi", "vi-VN", a q-value above every other language's).
func WantsVietnamese(req events.APIGatewayV2HTTPRequest) bool {
	h := req.Headers["accept-language"]
	if h == "" {
		h = req.Headers["Accept-Language"]
	}
	best, bestQ := "", -1.0
	for _, part := range strings.Split(h, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		if tag = strings.ToLower(strings.TrimSpace(tag)); tag != "" && q > bestQ {
			best, bestQ = tag, q
		}
	}
	return bestQ > 0 && (best == "vi" || strings.HasPrefix(best, "vi-"))
}

// localizeErrors puts the Vietnamese of each error's message in place.
func localizeErrors(errs []dose.FieldError) {
	for i := range errs {
		if vi := dose.MessageVI(errs[i]); vi != "" {
			errs[i].Message = vi
		}
	}
}

// localizeReport translates an upload's row errors for a request that asks for vi.
func localizeReport(req events.APIGatewayV2HTTPRequest, rep *ingest.Report) {
	if !WantsVietnamese(req) {
		return
	}
	for i := range rep.Results {
		localizeErrors(rep.Results[i].Errors)
	}
}

// localizeImport translates an import's row errors and warnings.
func localizeImport(req events.APIGatewayV2HTTPRequest, rep *ImportReport) {
	if !WantsVietnamese(req) {
		return
	}
	for i := range rep.Results {
		localizeErrors(rep.Results[i].Errors)
		localizeErrors(rep.Results[i].Warnings)
	}
}

// errorMessagesVI are the fixed messages of error bodies.
var errorMessagesVI = map[string]string{
	"missing or unknown API key": "thiếu khoá API hoặc khoá không hợp lệ",
	"not found":                  "không tìm thấy",
	"the request cannot be processed: check its fields":                                       "không xử lý được yêu cầu: hãy kiểm tra các trường",
	"the record changed meanwhile; try again":                                                 "hồ sơ vừa bị thay đổi; hãy thử lại",
	"internal error; please try again later":                                                  "lỗi hệ thống; vui lòng thử lại sau",
	"records must hold at least one record":                                                   "danh sách hồ sơ phải có ít nhất một hồ sơ",
	"records is required: an array of dose records":                                           "thiếu danh sách hồ sơ (records)",
	"give at least one dose-record field to correct":                                          "hãy nhập ít nhất một trường cần sửa",
	"send an .xlsx file as application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "hãy gửi tệp .xlsx (application/vnd.openxmlformats-officedocument.spreadsheetml.sheet)",
}

// LocalizeError translates the message of an error answer ({"error":{...}}) for a
// request that asks for vi: a fixed message, or a field's message ("dob must be ...").
// Any other answer comes back as it was.
func LocalizeError(req events.APIGatewayV2HTTPRequest, resp events.APIGatewayV2HTTPResponse) events.APIGatewayV2HTTPResponse {
	if resp.StatusCode < 400 || !WantsVietnamese(req) {
		return resp
	}
	var body apigw.ErrorBody
	if json.Unmarshal([]byte(resp.Body), &body) != nil || body.Error.Message == "" {
		return resp
	}
	d := body.Error
	vi, ok := errorMessagesVI[d.Message]
	if !ok && d.Field != "" {
		msg := strings.TrimPrefix(d.Message, d.Field+" ")
		vi = dose.MessageVI(dose.FieldError{Field: d.Field, Code: d.Code, Message: msg})
		ok = vi != ""
	}
	if !ok {
		return resp
	}
	body.Error.Message = vi
	out, err := json.Marshal(body)
	if err != nil {
		return resp
	}
	resp.Body = string(out)
	return resp
}

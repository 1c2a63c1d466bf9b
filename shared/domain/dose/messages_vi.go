package dose

import "strings"

// FieldLabelsVI are the Vietnamese names of a dose record's fields and of a worklist's
// columns, as a commune's clerk reads them.
var FieldLabelsVI = map[string]string{
	"source_id": "Mã hồ sơ", "full_name": "Họ và tên", "dob": "Ngày sinh", "gender": "Giới tính",
	"id_number": "Số CCCD/CMND", "phone": "Số điện thoại", "nationality": "Quốc tịch",
	"commune_code": "Mã xã/phường", "vaccine": "Vắc xin", "dose_number": "Mũi số",
	"vaccinated_on": "Ngày tiêm", "lot": "Số lô", "facility_id": "Mã cơ sở tiêm",
	"corrected_full_name": "Sửa họ và tên", "corrected_dob": "Sửa ngày sinh",
	"corrected_gender": "Sửa giới tính", "corrected_id_number": "Sửa số CCCD/CMND", "note": "Ghi chú",
	"records": "Danh sách hồ sơ", "record": "Hồ sơ", "body": "Tệp gửi lên",
}

// messagesVI translates the fixed messages of Validate, of the uploads' decoding and of the
// spreadsheet import (the English text is the key: codes alone are too coarse, "invalid_format"
// covers a date as well as control characters).
var messagesVI = map[string]string{
	"is required":                                "không được để trống",
	"is not valid UTF-8":                         "không phải văn bản UTF-8 hợp lệ",
	"is longer than the limit":                   "dài quá giới hạn",
	"contains control characters":                "chứa ký tự điều khiển",
	"is in the future":                           "là ngày trong tương lai",
	"is before 2020-12-01":                       "trước ngày 01/12/2020 (ngày tiêm đầu tiên)",
	MsgDOBFormat:                                 "phải có dạng NN/TT/NNNN (ví dụ 04/03/1985), NNNN-TT-NN, NNNN-TT hoặc NNNN",
	"must be YYYY-MM-DD or DD/MM/YYYY":           "phải có dạng NN/TT/NNNN (ví dụ 04/03/2021) hoặc NNNN-TT-NN",
	"must be male or female (Nam or Nữ)":         "phải là Nam hoặc Nữ",
	"must be an ISO 3166-1 alpha-2 code":         "phải là mã quốc gia 2 chữ cái (ví dụ VN)",
	"is not one of the 8 licensed vaccine codes": "không phải một trong 8 mã vắc xin được cấp phép",
	"must be 1 or more":                          "phải từ 1 trở lên",
	"must be 20 or less":                         "phải từ 20 trở xuống",
	"must not contain /, ? or % (it is part of the record's URL)": "không được chứa /, ? hoặc %",
	"must be a whole number":                      "phải là số nguyên",
	"must be an integer":                          "phải là số nguyên",
	"must be a string":                            "phải là chuỗi văn bản",
	"is not a dose record field":                  "không phải trường của hồ sơ tiêm",
	"must be a JSON object of dose record fields": "phải là một đối tượng JSON gồm các trường của hồ sơ tiêm",
	"has a value but no header":                   "có giá trị nhưng cột không có tiêu đề",
	// The worklist import's own (shared/stage/worklist, shared/edge/httpapi).
	"no stored record of this worklist has this source_id":                                                                          "không có hồ sơ nào đã lưu trong danh sách này với mã hồ sơ này",
	"came back as a number without its leading zeros: type it as text, as it was":                                                   "bị đổi thành số và mất các số 0 ở đầu: hãy nhập lại dạng văn bản như ban đầu",
	"is read-only and differs from the stored record: the stored value is kept; correct it in its corrected_ column, if it has one": "là cột chỉ đọc và khác với hồ sơ đã lưu: giữ nguyên giá trị đã lưu; hãy sửa ở cột \"Sửa …\" (corrected_) nếu có",
	"a clerk sends back the commune's worklist: this row is no stored record of the commune":                                        "cán bộ xã chỉ gửi lại danh sách của xã: dòng này không phải hồ sơ đã lưu của xã",
}

// messagePrefixesVI translate messages that end with a number or a name.
var messagePrefixesVI = []struct{ en, vi string }{
	{"repeats the source_id of row ", "trùng mã hồ sơ với dòng "},
}

// MessageVI is e's message in Vietnamese for a clerk, "Nhãn (field): ...", or "" when the
// catalogue has no translation (the caller keeps the English). Codes and field names stay
// as they are: programs read those.
func MessageVI(e FieldError) string {
	vi, ok := messagesVI[e.Message]
	if !ok {
		for _, p := range messagePrefixesVI {
			if rest, found := strings.CutPrefix(e.Message, p.en); found {
				vi, ok = p.vi+rest, true
				break
			}
		}
	}
	if !ok {
		return ""
	}
	return FieldLabelVI(e.Field) + ": " + vi
}

// FieldLabelVI is "Nhãn (field)" for a known field, the field itself otherwise.
func FieldLabelVI(field string) string {
	if l, ok := FieldLabelsVI[field]; ok {
		return l + " (" + field + ")"
	}
	return field
}

package httpapi

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/vaxpass/vaxpass/shared/edge/apigw"
	"github.com/vaxpass/vaxpass/shared/hc1/passpdf"
	"github.com/vaxpass/vaxpass/shared/stage/lookup"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// PDFPath is where the printable passport of a certificate is served (the UVCI travels
// as in QRPath).
func PDFPath(uvci string) string {
	return "/v1/passports/" + base64.RawURLEncoding.EncodeToString([]byte(uvci)) + "/passport.pdf"
}

// getPDF serves the passport as one A4 page. Like the QR image, it is reached by the
// path the lookup answered, after the details were checked.
func (p *Public) getPDF(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	raw, err := base64.RawURLEncoding.DecodeString(apigw.PathParameter(req, "uvci"))
	if err != nil || len(raw) == 0 || len(raw) > 80 {
		return apigw.FieldError(http.StatusBadRequest, "uvci", "invalid_format", "not a passport path"), nil
	}
	cert, err := p.Lookup.ByUVCI(ctx, string(raw))
	if err == nil && cert.Status != vaxpass.CertIssued {
		err = vaxpass.ErrNotFound
	}
	if err != nil {
		return failure(p.log(), "pdf", err), nil
	}
	page, err := lookup.PageOf(cert)
	if err != nil {
		return failure(p.log(), "pdf", err), nil
	}
	pdf, err := passpdf.Render(PassportPDF(page))
	if err != nil {
		return failure(p.log(), "pdf", err), nil
	}
	resp := apigw.Bytes(http.StatusOK, "application/pdf", pdf)
	resp.Headers["Content-Disposition"] = `attachment; filename="vaccine-passport.pdf"`
	resp.Headers["Cache-Control"] = "private, max-age=300"
	return resp, nil
}

// PassportPDF lays a certificate's page out for print: Vietnamese labels beside the
// English ones, the English value the certificate carries and its Vietnamese rendering,
// dates as DD/MM/YYYY.
func PassportPDF(pg lookup.Page) passpdf.Passport {
	f := pg.Fields
	icao := pg.FamilyICAO
	if pg.GivenICAO != "" {
		icao += "<<" + pg.GivenICAO
	}
	dose := strconv.Itoa(f.DoseNumber)
	if f.TotalDoses > 0 {
		dose += "/" + strconv.Itoa(f.TotalDoses)
	}
	rows := []passpdf.Row{
		{LabelVI: "Họ và tên", LabelEN: "Name", Value: f.FullName},
		{LabelVI: "Họ tên theo chuẩn ICAO (hộ chiếu)", LabelEN: "Name, ICAO 9303 transliteration", Value: icao},
		{LabelVI: "Ngày sinh", LabelEN: "Date of birth", Value: DateVI(f.DateOfBirth)},
		{LabelVI: "Quốc tịch", LabelEN: "Nationality", Value: f.Nationality, ValueVI: CountryVI(f.Nationality)},
		{LabelVI: "Bệnh được phòng", LabelEN: "Disease targeted", Value: f.Disease},
		{LabelVI: "Số mũi đã tiêm", LabelEN: "Doses received", Value: strconv.Itoa(f.DosesReceived)},
		{LabelVI: "Ngày tiêm", LabelEN: "Date of vaccination", Value: DateVI(f.DateOfVaccination)},
		{LabelVI: "Mũi số", LabelEN: "Dose number", Value: dose},
		{LabelVI: "Loại vắc xin", LabelEN: "Vaccine / prophylaxis", Value: f.Vaccine, ValueVI: VaccineTypeVI(f.Vaccine)},
		{LabelVI: "Tên vắc xin", LabelEN: "Vaccine product", Value: f.VaccineProduct},
		{LabelVI: "Nhà sản xuất", LabelEN: "Manufacturer", Value: f.Manufacturer},
		{LabelVI: "Nước tiêm chủng", LabelEN: "Country of vaccination", Value: pg.Country, ValueVI: CountryVI(pg.Country)},
		{LabelVI: "Cơ quan cấp", LabelEN: "Certificate issuer", Value: pg.Issuer, ValueVI: IssuerVI(pg.Issuer)},
		{LabelVI: "Mã chứng nhận", LabelEN: "Certificate identifier", Value: f.CertificateID},
	}
	footer := ""
	if !pg.ExpiresAt.IsZero() {
		footer = fmt.Sprintf("Có hiệu lực đến / Valid until %s", pg.ExpiresAt.In(vnZone).Format("02/01/2006"))
	}
	return passpdf.Passport{
		TitleVI: "Chứng nhận tiêm chủng COVID-19", TitleEN: "EU Digital COVID Certificate: vaccination",
		Rows: rows, HC1: pg.HC1, Footer: footer,
	}
}

// vnZone is Vietnam's time (UTC+7, no daylight saving): dates a citizen reads.
var vnZone = time.FixedZone("ICT", 7*3600)

// DateVI writes YYYY-MM-DD (or YYYY-MM, YYYY) the Vietnamese way: DD/MM/YYYY.
func DateVI(iso string) string {
	parts := strings.Split(iso, "-")
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return strings.Join(parts, "/")
}

// CountryVI names the countries a Vietnamese certificate carries; others stay as codes.
func CountryVI(code string) string {
	if code == "VN" {
		return "Việt Nam"
	}
	return ""
}

// IssuerVI is the issuer in Vietnamese (the certificate carries the English name).
func IssuerVI(issuer string) string {
	if strings.Contains(strings.ToLower(issuer), "ministry of health") {
		return "Bộ Y tế"
	}
	return ""
}

// vaccineTypeVI translates the value set's displays of vaccine/prophylaxis.
var vaccineTypeVI = map[string]string{
	"SARS-CoV-2 mRNA vaccine":                       "Vắc xin mRNA phòng SARS-CoV-2",
	"SARS-CoV-2 antigen vaccine":                    "Vắc xin kháng nguyên SARS-CoV-2",
	"COVID-19 non-replicating viral vector vaccine": "Vắc xin vectơ vi rút không sao chép phòng COVID-19",
	"Inactivated whole SARS-CoV-2 antigen vaccine":  "Vắc xin bất hoạt toàn phần SARS-CoV-2",
	"COVID-19 vaccine":                              "Vắc xin phòng COVID-19",
	"covid-19 vaccines":                             "Vắc xin phòng COVID-19",
}

// VaccineTypeVI is the Vietnamese of a vaccine type display, "" when not known.
func VaccineTypeVI(display string) string { return vaccineTypeVI[display] }

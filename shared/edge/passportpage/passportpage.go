// Package passportpage lays a certificate's page out for the citizen: Vietnamese labels
// and values beside the English the certificate carries, dates as DD/MM/YYYY, and the
// printable PDF. It is its own package so that only the public API links the PDF fonts.
package passportpage

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vaxpass/vaxpass/shared/hc1/passpdf"
	"github.com/vaxpass/vaxpass/shared/stage/lookup"
)

// PDF renders the passport of pg as one A4 page.
func PDF(pg lookup.Page) ([]byte, error) { return passpdf.Render(Layout(pg)) }

// Layout lays a certificate's page out for print: Vietnamese labels beside the
// English ones, the English value the certificate carries and its Vietnamese rendering,
// dates as DD/MM/YYYY.
func Layout(pg lookup.Page) passpdf.Passport {
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

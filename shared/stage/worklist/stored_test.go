package worklist

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
)

// storeOf serves the sample rows as the store does, by facility and source_id.
func storeOf(rows []Row) Stored {
	return func(facilityID, sourceID string) (dose.Record, bool, error) {
		for _, r := range rows {
			if r.Facility == facilityID && r.Record.SourceID == sourceID {
				return r.Record, true, nil
			}
		}
		return dose.Record{}, false, nil
	}
}

// editedWorklist writes the sample worklist and sets cells as a spreadsheet program would
// hand them back: an int is a number cell (leading zeros gone), a string a text cell.
func editedWorklist(t *testing.T, cells map[string]any) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := WriteXLSX(&buf, slices.Values(sampleRows())); err != nil {
		t.Fatal(err)
	}
	f, err := excelize.OpenReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for cell, v := range cells {
		if err := f.SetCellValue(SheetName, cell, v); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	if _, err := f.WriteTo(&out); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func TestWorklistReadAgainstStore(t *testing.T) {
	rows := sampleRows()
	body := editedWorklist(t, map[string]any{
		// s1: phone and commune came back as numbers; a correction typed DD/MM/YYYY.
		"F2": 901234567, "H2": 790001, "Q2": "12/03/1986",
		// s2: the ID typed as a number (11 digits: a CCCD that lost its 0), date of birth a clerk's way.
		"S3": 79190000001, "Q3": "01/05/1990", "R3": "Nữ",
		// s3: a phone of 5 digits cannot be told: refused, naming the column.
		"F4": 12345,
		// s4: the ID a number, the read-only name and vaccine changed: warnings, stored values kept.
		// Its 7-digit commune 0010002 came back as 10002, which alone would pass for a
		// 5-digit code: the stored value tells.
		"E5": 1060000001, "B5": "Lê Văn Tám Sửa", "I5": "MODERNA", "H5": 10002,
		// a row of no stored record
		"A6": "s9", "B6": "Ai Đó", "U6": "F1",
	})
	res, err := ReadXLSXStored(bytes.NewReader(body), today, DefaultLimits(), storeOf(rows))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Worklist || len(res.Accepted) != 3 {
		t.Fatalf("accepted %+v, rejected %+v", res.Accepted, res.Rejected)
	}
	want1 := rows[0].Record
	want1.DOB = "1986-03-12"
	if a := res.Accepted[0]; a.Record != want1 || !a.FromStore || a.Facility != "F1" || len(a.Warnings) != 0 ||
		!slices.Equal(a.Corrected, []string{"dob"}) {
		t.Errorf("s1: %+v, want %+v", a, want1)
	}
	want2 := rows[1].Record
	want2.DOB, want2.IDNumber = "1990-05-01", "079190000001"
	if a := res.Accepted[1]; a.Record != want2 || len(a.Warnings) != 0 {
		t.Errorf("s2: %+v, want %+v", a.Record, want2)
	}
	a := res.Accepted[2]
	if a.Record != rows[3].Record || len(a.Corrected) != 0 {
		t.Errorf("s4: %+v, want the stored %+v", a.Record, rows[3].Record)
	}
	var warned []string
	for _, w := range a.Warnings {
		if w.Code != CodeReadOnlyChanged {
			t.Errorf("s4 warning %+v", w)
		}
		warned = append(warned, w.Field)
	}
	if !slices.Equal(warned, []string{"full_name", "vaccine"}) {
		t.Errorf("s4 warnings on %v, want full_name, vaccine (the ID that lost its zeros is the stored one)", warned)
	}
	want := []rejection{{4, "phone", CodeLostZeros}, {6, "source_id", CodeNotFound}}
	if got := rejections(res); !slices.Equal(got, want) {
		t.Errorf("rejections %v, want %v", got, want)
	}

	// Without a store the cells are the record, as before.
	plain, err := ReadXLSX(bytes.NewReader(body), today, DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	for _, acc := range plain.Accepted {
		if acc.FromStore || acc.Record.SourceID == "s4" && acc.Record.FullName != "Lê Văn Tám Sửa" {
			t.Errorf("read without a store: %+v", acc)
		}
	}
}

func TestWorklistStoreFailure(t *testing.T) {
	boom := errors.New("store down")
	_, err := ReadXLSXStored(bytes.NewReader(editedWorklist(t, nil)), today, DefaultLimits(),
		func(string, string) (dose.Record, bool, error) { return dose.Record{}, false, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("err %v, want the store's", err)
	}
}

func TestClerkRowNeedsItsFacility(t *testing.T) {
	// A worklist row without facility_id reads as the store says (a facility key's own
	// record); a row naming another facility is that facility's.
	rows := sampleRows()
	body := editedWorklist(t, map[string]any{"U2": "", "U5": "F1"})
	var asked []string
	res, err := ReadXLSXStored(bytes.NewReader(body), today, DefaultLimits(), func(fac, sid string) (dose.Record, bool, error) {
		asked = append(asked, fac+"/"+sid)
		return storeOf(rows)(fac, sid)
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/s1", "F1/s2", "F2/s3", "F1/s4"}; !slices.Equal(asked, want) {
		t.Errorf("asked the store for %v, want %v", asked, want)
	}
	if got := rejections(res); !slices.Equal(got, []rejection{{2, "source_id", CodeNotFound}, {5, "source_id", CodeNotFound}}) {
		t.Errorf("rejections %v", got)
	}
}

func TestNumbersGetTheirZerosBack(t *testing.T) {
	// A facility's own sheet (no store): an ID, phone or commune typed as a number gets
	// its zeros back where the length leaves no doubt.
	body := xlsxOf(t, [][]any{
		importHeader,
		importRow("n1", set(4, 79085012345), set(5, 901234567), set(7, 790001)),
		importRow("n2", set(4, 12345678), set(7, 1234)), // a CMND of 8 digits, a 5-digit commune of 4
		importRow("n3", set(4, 1234567)),                // 7 digits: no rule; kept as it is
	}, nil)
	res, err := ReadXLSX(bytes.NewReader(body), today, DefaultLimits())
	if err != nil || len(res.Accepted) != 3 {
		t.Fatalf("%+v %v", res, err)
	}
	got := func(i int) [3]string {
		r := res.Accepted[i].Record
		return [3]string{r.IDNumber, r.Phone, r.CommuneCode}
	}
	for i, want := range [][3]string{{"079085012345", "0901234567", "0790001"}, {"012345678", "", "01234"}, {"1234567", "", "0790001"}} {
		if got(i) != want {
			t.Errorf("row %d: %v, want %v", i+2, got(i), want)
		}
	}
}

func TestRestoreZeros(t *testing.T) {
	for _, tt := range []struct {
		cell, stored, want string
		ok                 bool
	}{
		{"1308764214", "001308764214", "001308764214", true},
		{"001308764214", "001308764214", "001308764214", true},
		{"1308764214", "101308764214", "", false}, // not zeros in front
		{"", "0912345678", "", false},
		{"912345678", "0912345678", "0912345678", true},
		{"9 12", "09 12", "", false},
	} {
		got, ok := restoreZeros(tt.cell, tt.stored)
		if got != tt.want || ok != tt.ok {
			t.Errorf("restoreZeros(%q, %q) = %q, %v", tt.cell, tt.stored, got, ok)
		}
	}
}

package identity

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
)

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"001088012345", "001088012345"},
		{"001 088 012 345", "001088012345"},
		{"001.088.012.345", "001088012345"},
		{" 001-088-012-345 ", "001088012345"},
		{"001\u00a0088\t012345", "001088012345"},
		{"001088012345\r\n", "001088012345"},
		{"B1234567", "B1234567"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Normalize(tt.in); got != tt.want {
			t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = Normalize("001088012345") }); n != 0 {
		t.Errorf("Normalize of a clean number allocates %v times", n)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name, in string
		want     ID
		err      *Error
	}{
		{"CCCD", "001088012345", ID{"001088012345", Personal12}, nil},
		{"CCCD with spaces", "001 088 012 345", ID{"001088012345", Personal12}, nil},
		{"CCCD with dots", "079.199.000.001", ID{"079199000001", Personal12}, nil},
		{"last province code", "096301000001", ID{"096301000001", Personal12}, nil},
		{"9-digit CMND", "123456789", ID{"123456789", CMND9}, nil},
		{"9-digit CMND with dots", "123.456.789", ID{"123456789", CMND9}, nil},
		{"empty", "", ID{}, ErrEmpty},
		{"only separators", " . - ", ID{}, ErrEmpty},
		{"11 digits", "00108801234", ID{}, ErrLength},
		{"13 digits", "0010880123456", ID{}, ErrLength},
		{"10 digits", "0010880123", ID{}, ErrLength},
		{"8 digits", "12345678", ID{}, ErrLength},
		{"letters", "00108801234A", ID{}, ErrCharacters},
		{"passport number", "B1234567", ID{}, ErrCharacters},
		{"full-width digits", "００１０８８０１２３４５", ID{}, ErrCharacters},
		{"slash", "001/88012345", ID{}, ErrCharacters},
		{"unknown province 003", "003088012345", ID{}, ErrProvince},
		{"unknown province 000", "000088012345", ID{}, ErrProvince},
		{"unknown province 097", "097088012345", ID{}, ErrProvince},
		{"foreign leading digit", "101088012345", ID{}, ErrProvince},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.err == nil {
				if err != nil || got != tt.want {
					t.Fatalf("Parse(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("Parse(%q) error = %v, want %v", tt.in, err, tt.err)
			}
			if Code(err) != tt.err.Code {
				t.Fatalf("Code = %q, want %q", Code(err), tt.err.Code)
			}
		})
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		in       string
		province string
		gender   string
		year     int
	}{
		{"087084000999", "Đồng Tháp", dose.Male, 1984}, // notes §4.3
		{"001188456789", "Hà Nội", dose.Female, 1988},  // notes §4.3
		{"079205000001", "Hồ Chí Minh", dose.Male, 2005},
		{"092399000001", "Cần Thơ", dose.Female, 2099},
		{"031400000001", "Hải Phòng", dose.Male, 2100},
	}
	for _, tt := range tests {
		id, err := Parse(tt.in)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.in, err)
		}
		year, ok := id.BirthYear()
		if !ok || year != tt.year || id.Gender() != tt.gender || !strings.HasSuffix(id.ProvinceName(), tt.province) {
			t.Errorf("%s: province %q gender %q year %d,%v; want %q %q %d",
				tt.in, id.ProvinceName(), id.Gender(), year, ok, tt.province, tt.gender, tt.year)
		}
	}
	cmnd, _ := Parse("123456789")
	if _, ok := cmnd.BirthYear(); ok || cmnd.Gender() != "" || cmnd.ProvinceCode() != "" {
		t.Errorf("a 9-digit CMND decodes to something: %+v", cmnd)
	}
}

func TestProvinceCount(t *testing.T) {
	if n := ProvinceCount(); n != 63 {
		t.Fatalf("%d province codes, want 63", n)
	}
	for _, c := range []string{"001", "031", "048", "079", "092", "096"} {
		if provinceNames[c] == "" {
			t.Errorf("province %s missing", c)
		}
	}
}

func TestCheckRecord(t *testing.T) {
	date := func(s string) dose.PartialDate {
		d, err := dose.ParsePartialDate(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	tests := []struct {
		name, id, gender, dob string
		want                  []string
	}{
		{"agrees", "001088012345", dose.Male, "1988-04-02", nil},
		{"agrees, year-only dob", "001188012345", dose.Female, "1988", nil},
		{"agrees, year-month dob", "001188012345", dose.Female, "1988-07", nil},
		{"2000s male", "079205000001", dose.Male, "2005-01-01", nil},
		{"gender unknown", "001188012345", "", "1988", nil},
		{"dob unknown", "001188012345", dose.Female, "", nil},
		{"gender contradicts", "001088012345", dose.Female, "1988-04-02", []string{"ID_GENDER_CENTURY"}},
		{"century contradicts", "001088012345", dose.Male, "2088-04-02", []string{"ID_GENDER_CENTURY"}},
		{"century 2000s typed 1900s", "079205000001", dose.Male, "1905", []string{"ID_GENDER_CENTURY"}},
		{"birth year contradicts", "001088012345", dose.Male, "1987-04-02", []string{"ID_BIRTH_YEAR"}},
		{"both contradict", "001088012345", dose.Female, "1990", []string{"ID_GENDER_CENTURY", "ID_BIRTH_YEAR"}},
		{"9-digit CMND never contradicts", "123456789", dose.Female, "1990", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := Parse(tt.id)
			if err != nil {
				t.Fatal(err)
			}
			var dob dose.PartialDate
			if tt.dob != "" {
				dob = date(tt.dob)
			}
			err = id.CheckRecord(tt.gender, dob)
			if got := Codes(err); !slices.Equal(got, tt.want) {
				t.Fatalf("CheckRecord = %v (codes %v), want %v", err, got, tt.want)
			}
			if len(tt.want) > 0 && tt.want[0] == "ID_GENDER_CENTURY" && !errors.Is(err, ErrGenderCentury) {
				t.Fatalf("errors.Is(%v, ErrGenderCentury) = false", err)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"001088012345", "001 088.012-345", "123456789", "00108801234A", "003088012345", "", "０"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := Parse(s)
		if err != nil {
			if Code(err) == "" {
				t.Fatalf("Parse(%q) error %v has no reason code", s, err)
			}
			return
		}
		if len(id.Number) != int(id.Kind) {
			t.Fatalf("Parse(%q) = %+v: length and kind disagree", s, id)
		}
		for i := 0; i < len(id.Number); i++ {
			if id.Number[i] < '0' || id.Number[i] > '9' {
				t.Fatalf("Parse(%q) = %+v holds a non-digit", s, id)
			}
		}
		if again, err := Parse(id.Number); err != nil || again != id {
			t.Fatalf("Parse not idempotent on %q: %+v, %v", s, again, err)
		}
		if y, ok := id.BirthYear(); ok {
			if err := id.CheckRecord(id.Gender(), dose.PartialDate{Year: y}); err != nil {
				t.Fatalf("%s contradicts its own digits: %v", id.Number, err)
			}
		}
	})
}

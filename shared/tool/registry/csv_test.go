package registry

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestReader(t *testing.T) {
	const file = "\ufeffGender,DOB,full_name,id_number,commune\n" + // BOM, any order, extra column, any case
		"male,1988-04-02,Nguyễn  Văn An,001 088 012 345,x\n" + // line 2: ok, normalised
		"female,1990-12-31,\"Đặng Thị Hồng\",079.190.000.123,x\n" + // line 3: ok
		"male,1975-06-15,Trần Văn Bình,123456789,x\n" + // line 4: ok, CMND
		"male,1988-04-02,Nguyễn Văn An,00108801234,x\n" + // line 5: ID_LENGTH
		"male,1988-04-02,Nguyễn Văn An,00108801234A,x\n" + // line 6: ID_CHARACTERS
		"male,1988-04-02,Nguyễn Văn An,003088012345,x\n" + // line 7: ID_PROVINCE
		"male,1988-04-02,Nguyễn Văn An,,x\n" + // line 8: no ID
		"male,1988-04-02,,001088012346,x\n" + // line 9: no name
		"male,1988,Nguyễn Văn An,001088012347,x\n" + // line 10: partial dob
		"male,1988-02-30,Nguyễn Văn An,001088012348,x\n" + // line 11: impossible day
		"nam,1988-04-02,Nguyễn Văn An,001088012349,x\n" + // line 12: gender
		"female,1988-04-02,Nguyễn Thị An,001088012350,x\n" + // line 13: digits contradict gender
		"male,1988-04-02,Nguyễn Văn An,001088012351\n" + // line 14: field count
		"male,1988-04-02,\"Nguyễn \"\"Văn\"\" An\",001088012352,x\n" + // line 15: ok, quotes
		"male,1988-04-02,\"Nguyễn\nVăn An\",001088012353,x\n" + // lines 16-17: newline in a name
		"male,1988-04-02,Nguyễn \"Văn\" An,001088012354,x\n" + // line 18: bare quote
		"male,1988-04-02,Lê Văn Tám,001088012355,x" // line 19: ok, no final newline
	rd, err := NewReader(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		line  int
		field string
		id    string
	}
	want := []outcome{
		{0, "", "001088012345"}, {0, "", "079190000123"}, {0, "", "123456789"},
		{5, "id_number", ""}, {6, "id_number", ""}, {7, "id_number", ""}, {8, "id_number", ""},
		{9, "full_name", ""}, {10, "dob", ""}, {11, "dob", ""}, {12, "gender", ""}, {13, "id_number", ""},
		{14, "", ""}, {0, "", "001088012352"}, {16, "full_name", ""}, {18, "", ""}, {0, "", "001088012355"},
	}
	var got []outcome
	for p, err := range rd.All() {
		var le *LineError
		switch {
		case errors.As(err, &le):
			got = append(got, outcome{le.Line, le.Field, ""})
			if strings.Contains(le.Error(), "Nguyễn") || strings.Contains(le.Error(), "0010880") {
				t.Errorf("line error shows personal data: %v", le)
			}
		case err != nil:
			t.Fatalf("unexpected error: %v", err)
		default:
			got = append(got, outcome{0, "", p.IDNumber})
			if p.NameKey == "" || p.Gender != "male" && p.Gender != "female" {
				t.Errorf("person not normalised: %+v", p)
			}
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %d outcomes %v, want %d %v", len(got), got, len(want), want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("outcome %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestReaderNormalises(t *testing.T) {
	rd, err := NewReader(strings.NewReader("id_number,full_name,dob,gender\n001 088 012 345,\" NGUYỄN  Văn An \",1988-04-02, Male \n"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := rd.Read()
	if err != nil {
		t.Fatal(err)
	}
	if p.IDNumber != "001088012345" || p.FullName != "NGUYỄN Văn An" || p.NameKey != "nguyen van an" || p.Gender != "male" || p.DOB != "1988-04-02" {
		t.Errorf("got %+v", p)
	}
	if _, err := rd.Read(); !errors.Is(err, io.EOF) {
		t.Errorf("second Read: %v, want EOF", err)
	}
}

func TestReaderErrors(t *testing.T) {
	tests := []struct {
		name, file string
		want       error
	}{
		{"empty", "", ErrHeader},
		{"missing column", "id_number,full_name,dob\n", ErrHeader},
		{"duplicate column", "id_number,full_name,dob,gender,dob\n", ErrHeader},
		{"header line too long", strings.Repeat("x", MaxLineBytes+10), ErrLineTooLong},
	}
	for _, tt := range tests {
		if _, err := NewReader(strings.NewReader(tt.file)); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}

	long := "id_number,full_name,dob,gender\n001088012345,\"" + strings.Repeat("a", MaxLineBytes+10) + "\",1988-04-02,male\n"
	rd, err := NewReader(strings.NewReader(long))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rd.Read(); !errors.Is(err, ErrLineTooLong) {
		t.Errorf("long line: %v, want ErrLineTooLong", err)
	}

	name := strings.Repeat("Lê ", 100)
	rd, _ = NewReader(strings.NewReader("id_number,full_name,dob,gender\n001088012345," + name + ",1988-04-02,male\n"))
	var le *LineError
	if _, err := rd.Read(); !errors.As(err, &le) || le.Field != "full_name" || le.Line != 2 {
		t.Errorf("name of 300 characters: %v", err)
	}
}

func FuzzReader(f *testing.F) {
	f.Add("id_number,full_name,dob,gender\n001088012345,Nguyễn Văn An,1988-04-02,male\n")
	f.Add("\ufeffgender,dob,full_name,id_number\nfemale,1990-12-31,\"Đặng\nThị\",079.190.000.123\n")
	f.Add("id_number,full_name,dob,gender\n\"001\"\"\",a,b\n")
	f.Fuzz(func(t *testing.T, file string) {
		rd, err := NewReader(strings.NewReader(file))
		if err != nil {
			return
		}
		for p, err := range rd.All() {
			var le *LineError
			if err != nil {
				if !errors.As(err, &le) && !errors.Is(err, ErrLineTooLong) {
					t.Fatalf("error of an unexpected class: %v", err)
				}
				if le != nil && le.Line < 2 {
					t.Fatalf("line number %d", le.Line)
				}
				continue
			}
			m := NewMemory(0)
			if _, err := m.Add(p); err != nil {
				t.Fatalf("the reader accepted a person Memory refuses: %+v: %v", p, err)
			}
		}
	})
}

// A reader resumed at any Position of an earlier reader reads the same records after it,
// naming the same lines: across a BOM, CRLF line ends, blank lines, a quoted field that
// spans lines (the last field, and another one), rejected lines and a malformed one.
func TestReaderResumesAtAnyPosition(t *testing.T) {
	const file = "\ufeffid_number,full_name,dob,gender,note\r\n" +
		"001088012345,Nguyễn Văn An,1988-04-02,male,\"two\r\nlines\"\r\n" + // lines 2-3
		"\r\n" + // line 4: blank
		"079190000123,\"Đặng\nThị Hồng\",1990-12-31,female,x\n" + // lines 5-6: rejected, a line break in the name
		"00108801234,Nguyễn Văn An,1988-04-02,male,x\n" + // line 7: rejected
		"001088012346,Nguyễn \"Văn\" An,1988-04-02,male,x\n" + // line 8: malformed CSV
		"001088012347,Trần Văn Bình,1988-04-02,male,\"a\n\nb\"\n" + // lines 9-11
		"001088012348,Lê Văn Cường,1988-04-02,male,x" // line 12, no final line break
	type item struct {
		id  string
		err string
	}
	readAll := func(rd *Reader) (items []item, positions []Position) {
		for {
			p, err := rd.Read()
			if errors.Is(err, io.EOF) {
				return items, positions
			}
			it := item{id: p.IDNumber}
			if err != nil {
				it.err = err.Error()
			}
			items = append(items, it)
			positions = append(positions, rd.Position())
		}
	}
	rd, err := NewReader(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	start := rd.Position()
	if start.Line != 1 || start.Offset != int64(len("\ufeffid_number,full_name,dob,gender,note\r\n")) {
		t.Errorf("position after the header %+v", start)
	}
	all, positions := readAll(rd)
	var lines []string
	for _, it := range all {
		if it.err != "" {
			lines = append(lines, it.err[:strings.Index(it.err, ":")])
		}
	}
	if len(all) != 6 || strings.Join(lines, ",") != "line 5,line 7,line 8" {
		t.Fatalf("read %+v", all)
	}
	wantLines := []int{3, 6, 7, 8, 11, 12}
	for i, pos := range positions {
		if pos.Line != wantLines[i] {
			t.Errorf("record %d ends on line %d, want %d", i+1, pos.Line, wantLines[i])
		}
	}
	if last := positions[len(positions)-1]; last.Offset != int64(len(file)) {
		t.Errorf("last position %+v, want the end of the file (%d)", last, len(file))
	}
	for i, pos := range append([]Position{start}, positions...) {
		rd, err := NewReaderAt(strings.NewReader(file), pos)
		if err != nil {
			t.Fatal(err)
		}
		rest, _ := readAll(rd)
		if got, want := fmt.Sprint(rest), fmt.Sprint(all[i:]); got != want {
			t.Errorf("resumed after record %d at %+v: read %s, want %s", i, pos, got, want)
		}
	}
	if _, err := NewReaderAt(strings.NewReader(file), Position{Offset: 3, Line: 1}); err == nil {
		t.Error("a position inside the header was accepted")
	}
}

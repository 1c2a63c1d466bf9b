package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testRegistryCSV = "id_number,full_name,dob,gender,commune_code\n" +
	"001088012345,Nguyễn Văn An,1988-04-02,male,00101\n" +
	"079190000123,Đặng Thị Hồng,1990-12-31,female,07901\n" +
	"123456789,Trần Văn Bình,1975-06-15,male,00101\n" +
	"001195000001,Lê Thị Mai,1995-03-10,female,00101\n" +
	"bad,Lê Thị Mai,1995-03-10,female,00101\n" // line 6: rejected, reported

func record(sourceID, id, name, dob, gender string) string {
	b, _ := json.Marshal(map[string]any{"source_id": sourceID, "id_number": id, "full_name": name, "dob": dob,
		"gender": gender, "vaccine": "PFIZER", "dose_number": 1, "vaccinated_on": "2021-09-15"})
	return string(b)
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestMatchCommand(t *testing.T) {
	reg := writeFile(t, "registry.csv", testRegistryCSV)
	lines := []string{
		record("r1", "001 088 012 345", "NGUYEN VAN AN", "1988", "male"), // VERIFIED, corrected
		record("r2", "079190000123", "Đặng Thị Hồng", "1990-12-31", "female"),
		`{"source_id":"r3","full_name":"x"`,                                 // line 3: truncated JSON
		record("r4", "001088012345", "Nguyễn Văn An", "1988-04-03", "male"), // MISMATCH DOB
		"", // blank: ignored
		`{"source_id":"r6","full_name":"A","dob":"1990","gender":"male","vaccine":"PFIZER","dose_number":"one","vaccinated_on":"2021-09-15"}`, // line 6
		record("r7", "", "Le Thi Mai", "1995", "female"),                                // NO_ID + candidate
		`{"source_id":"r8","colour":"red"}`,                                             // line 8: unknown field
		strings.Replace(record("r9", "1", "A", "1990", "male"), "PFIZER", "ASPIRIN", 1), // line 9: vaccine
		record("r10", "00108801234", "Nguyễn Văn An", "1988", "male"),                   // INVALID_ID
		record("r11", "001088099999", "Nguyễn Văn An", "1988", "female"),                // INVALID_ID gender digit
		record("r12", "987654321", "Trần Văn Bình", "1975-06-15", "male"),               // NOT_FOUND
		record("r13", "123.456.789", "Tran Van Binh", "1975-06-15", "male"),             // VERIFIED
		"{" + strings.Repeat(" ", maxRecordLine) + "}",                                  // line 14: too long
		record("r15", "001088012345", "Nguyễn Văn An", "1988-04-02", "male"),
	}
	recs := writeFile(t, "records.jsonl", strings.Join(lines, "\n")) // no final newline

	want := []struct {
		sourceID, status, reasons, corrected string
		candidates                           int
	}{
		{"r1", "VERIFIED", "", "dob=1988-04-02 full_name=Nguyễn Văn An id_number=001088012345", 0},
		{"r2", "VERIFIED", "", "", 0},
		{"r4", "MISMATCH", "DOB", "", 0},
		{"r7", "NO_ID", "", "", 1},
		{"r10", "INVALID_ID", "ID_LENGTH", "", 1},
		{"r11", "INVALID_ID", "ID_GENDER_CENTURY", "", 1},
		{"r12", "NOT_FOUND", "", "", 1},
		{"r13", "VERIFIED", "", "full_name=Trần Văn Bình id_number=123456789", 0},
		{"r15", "VERIFIED", "", "", 0},
	}
	for _, workers := range []string{"1", "3"} {
		code, stdout, stderr := runCLI("", "match", "--registry", reg, "--records", recs, "--workers", workers)
		if code != 1 {
			t.Errorf("workers %s: exit %d, want 1 (lines rejected)\n%s", workers, code, stderr)
		}
		out := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
		if len(out) != len(want) {
			t.Fatalf("workers %s: %d output lines, want %d:\n%s\nstderr:\n%s", workers, len(out), len(want), stdout, stderr)
		}
		for i, w := range want {
			var got matchLine
			dec := json.NewDecoder(strings.NewReader(out[i]))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&got); err != nil {
				t.Fatalf("line %d: %v: %s", i+1, err, out[i])
			}
			var corrected []string
			for _, k := range []string{"dob", "full_name", "gender", "id_number"} {
				if v, ok := got.Corrected[k]; ok {
					corrected = append(corrected, k+"="+v)
				}
			}
			if got.SourceID != w.sourceID || string(got.Status) != w.status || strings.Join(got.Reasons, ",") != w.reasons ||
				strings.Join(corrected, " ") != w.corrected || len(got.Candidates) != w.candidates {
				t.Errorf("workers %s, output %d: %s\nwant %+v", workers, i+1, out[i], w)
			}
			if !strings.Contains(out[i], `"reasons":[`) || !strings.Contains(out[i], `"corrected":{`) {
				t.Errorf("output %d lacks reasons or corrected: %s", i+1, out[i])
			}
		}
		for _, msg := range []string{
			"registry " + reg + ": line 6: id_number:",
			"records line 3: invalid JSON",
			"records line 6: dose_number: must be a JSON int",
			"records line 8: \"colour\": unknown field",
			"records line 9: vaccine:",
			"records line 14: longer than",
			"9 records matched",
			"5 lines rejected",
			"VERIFIED   4", "MISMATCH   1", "NO_ID      1", "INVALID_ID 2", "NOT_FOUND  1",
		} {
			if !strings.Contains(stderr, msg) {
				t.Errorf("workers %s: stderr lacks %q:\n%s", workers, msg, stderr)
			}
		}
		if strings.Contains(stderr, "Nguy") || strings.Contains(stderr, "001088") {
			t.Errorf("stderr shows personal data:\n%s", stderr)
		}
	}
}

func TestMatchCommandClean(t *testing.T) {
	reg := writeFile(t, "registry.csv", "id_number,full_name,dob,gender\n001088012345,Nguyễn Văn An,1988-04-02,male\n")
	in := record("a", "001088012345", "Nguyễn Văn An", "1988-04-02", "male") + "\n"
	code, stdout, stderr := runCLI(in, "match", "--registry", reg, "--records", "-", "--candidates=false")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if want := `{"source_id":"a","status":"VERIFIED","reasons":[],"corrected":{}}` + "\n"; stdout != want {
		t.Errorf("stdout %q, want %q", stdout, want)
	}
}

func TestMatchCommandUsage(t *testing.T) {
	reg := writeFile(t, "registry.csv", "id_number,full_name,dob,gender\n")
	tests := []struct {
		args []string
		code int
	}{
		{[]string{"match"}, 2},
		{[]string{"match", "--registry", reg}, 2},
		{[]string{"match", "--registry", reg, "--records", "-", "extra"}, 2},
		{[]string{"match", "--registry", reg, "--records", "-", "--workers", "0"}, 2},
		{[]string{"match", "--registry", reg + ".missing", "--records", "-"}, 1},
		{[]string{"match", "--registry", writeFile(t, "bad.csv", "a,b\n"), "--records", "-"}, 1},
		{[]string{"match", "--registry", reg, "--records", reg + ".missing"}, 1},
		{[]string{"match", "--help"}, 0},
	}
	for _, tt := range tests {
		if code, _, stderr := runCLI("", tt.args...); code != tt.code {
			t.Errorf("%v: exit %d, want %d\n%s", tt.args, code, tt.code, stderr)
		}
	}
}

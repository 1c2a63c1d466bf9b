package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/wire/cloud/admin"
)

func TestRegistryLoadCommand(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	file := writeFile(t, "registry.csv", testRegistryCSV)

	load := func(wantCode int, args ...string) registryLoadSummary {
		t.Helper()
		code, stdout, stderr := runCLI("", append([]string{"registry", "load"}, args...)...)
		if code != wantCode {
			t.Fatalf("exit %d, want %d\n%s", code, wantCode, stderr)
		}
		if !strings.Contains(stderr, "registry.csv: line 6: id_number:") {
			t.Errorf("stderr does not report line 6:\n%s", stderr)
		}
		var sum registryLoadSummary
		if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
			t.Fatalf("stdout %q: %v", stdout, err)
		}
		return sum
	}
	if got := load(1, file, "--data", data); got != (registryLoadSummary{Loaded: 4, Added: 4, Rejected: 1, Total: 4}) {
		t.Errorf("first load %+v", got)
	}
	// Idempotent; flags may come first.
	if got := load(1, "--data", data, file); got != (registryLoadSummary{Loaded: 4, Unchanged: 4, Rejected: 1, Total: 4}) {
		t.Errorf("second load %+v", got)
	}
	update := writeFile(t, "registry.csv", strings.Replace(testRegistryCSV, "Nguyễn Văn An", "Nguyễn Văn Anh", 1))
	if got := load(1, update, "--data", data); got != (registryLoadSummary{Loaded: 4, Updated: 1, Unchanged: 3, Rejected: 1, Total: 4}) {
		t.Errorf("update load %+v", got)
	}

	clean := writeFile(t, "clean.csv", "id_number,full_name,dob,gender\n036199000001,Vũ Thị Lan,1999-09-09,female\n")
	if code, stdout, stderr := runCLI("", "registry", "load", clean, "--data", data); code != 0 || !strings.Contains(stdout, `"registry_people":5`) {
		t.Errorf("clean load: exit %d, %s %s", code, stdout, stderr)
	}
}

func TestRegistryLoadUsage(t *testing.T) {
	file := writeFile(t, "registry.csv", testRegistryCSV)
	data := t.TempDir()
	tests := []struct {
		args []string
		code int
	}{
		{[]string{"registry"}, 2},
		{[]string{"registry", "nonsense"}, 2},
		{[]string{"registry", "--help"}, 0},
		{[]string{"registry", "load"}, 2},
		{[]string{"registry", "load", file, file}, 2},
		{[]string{"registry", "load", file, "--backend", "aws", "--data", data}, 2},
		{[]string{"registry", "load", file + ".missing", "--data", data}, 1},
		{[]string{"registry", "load", writeFile(t, "bad.csv", "id_number,name\n"), "--data", data}, 1},
		{[]string{"registry", "load", file, "--data", file}, 1}, // data directory is a file
	}
	for _, tt := range tests {
		if code, _, stderr := runCLI("", tt.args...); code != tt.code {
			t.Errorf("%v: exit %d, want %d\n%s", tt.args, code, tt.code, stderr)
		}
	}
}

func TestFormatLoadProgress(t *testing.T) {
	got := formatLoadProgress(admin.LoadProgress{Written: 8000, Offset: 500, Start: 100, Size: 1000, Elapsed: 2 * time.Second, Rejected: 3, Retries: 7})
	want := "registry load:  50.0% of the file, 8000 people written (this run), 4000 people/s, ETA 3s, 3 rejected, 7 throttled retries"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if got := formatLoadProgress(admin.LoadProgress{Offset: 100, Start: 100, Size: 1000}); !strings.Contains(got, "ETA ?") {
		t.Errorf("no progress yet: %q", got)
	}
}

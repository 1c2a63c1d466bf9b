package reprocess

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

func TestDecodeSelectorVectors(t *testing.T) {
	files, err := filepath.Glob("testdata/selectors/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no selector vectors: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sel, err := DecodeSelector(bytes.NewReader(b))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if sel.Stage == "" && sel.RunID == "" {
			t.Errorf("%s: neither stage nor run", f)
		}
	}
}

func TestSelectorNormalize(t *testing.T) {
	tests := []struct {
		name      string
		json      string
		wantField string // "" for valid
		check     func(t *testing.T, s Selector)
	}{
		{name: "canonical lists", json: `{"stage":"match","status":["not_found","MISMATCH","NOT_FOUND"],"facility":["b","a","b"]}`,
			check: func(t *testing.T, s Selector) {
				if !slices.Equal(s.Statuses, []match.Status{match.Mismatch, match.NotFound}) || !slices.Equal(s.Facilities, []string{"a", "b"}) {
					t.Errorf("not canonical: %+v", s.Filter)
				}
				if s.DateField != VaccinatedOn {
					t.Errorf("date field %q, want the default", s.DateField)
				}
			}},
		{name: "run only", json: `{"run_id":"rp-20220701T120000Z-0a1b2c3d"}`},
		{name: "no stage", json: `{"status":["VERIFIED"]}`, wantField: "stage"},
		{name: "unknown stage", json: `{"stage":"sign"}`, wantField: "stage"},
		{name: "unknown status", json: `{"stage":"match","status":["DONE"]}`, wantField: "status[0]"},
		{name: "bad facility", json: `{"stage":"match","facility":["a b"]}`, wantField: "facility[0]"},
		{name: "bad commune", json: `{"stage":"match","commune":[""]}`, wantField: "commune[0]"},
		{name: "bad day", json: `{"stage":"match","from":"2022-13-01"}`, wantField: "from"},
		{name: "from after to", json: `{"stage":"match","from":"2022-02-01","to":"2022-01-31"}`, wantField: "from"},
		{name: "bad date field", json: `{"stage":"match","date_field":"signed_at"}`, wantField: "date_field"},
		{name: "bad run", json: `{"run_id":"../../etc"}`, wantField: "run_id"},
		{name: "control in reason", json: `{"stage":"match","reason":"a\u0000b"}`, wantField: "reason"},
		{name: "tab in actor", json: `{"stage":"match","actor":"a\tb"}`, wantField: "actor"},
		{name: "unknown field", json: `{"stage":"match","statuses":["VERIFIED"]}`, wantField: "statuses"},
		{name: "wrong type", json: `{"stage":"match","status":"VERIFIED"}`, wantField: "status"},
		{name: "two values", json: `{"stage":"match"} {}`, wantField: "more than one"},
	}
	for _, tt := range tests {
		sel, err := DecodeSelector(strings.NewReader(tt.json))
		switch {
		case tt.wantField == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.wantField != "" && err == nil:
			t.Errorf("%s: accepted %+v", tt.name, sel)
		case tt.wantField != "" && (!errors.Is(err, vaxpass.ErrInvalid) || !strings.Contains(err.Error(), tt.wantField)):
			t.Errorf("%s: error %q does not name %q (or is not ErrInvalid)", tt.name, err, tt.wantField)
		case tt.check != nil:
			tt.check(t, sel)
		}
	}
	big := `{"stage":"match","reason":"` + strings.Repeat("x", MaxSelectorBytes) + `"}`
	if _, err := DecodeSelector(strings.NewReader(big)); !errors.Is(err, vaxpass.ErrInvalid) {
		t.Errorf("an oversized selector: %v", err)
	}
}

func TestFilterMatches(t *testing.T) {
	d := vaxpass.Dose{FacilityID: "F1", Record: dose.Record{CommuneCode: "00001", VaccinatedOn: "2021-08-15"},
		Match: match.Result{Status: match.NotFound},
		// 20:00 UTC on 31 July is 1 August in Viet Nam.
		ReceivedAt: time.Date(2021, 7, 31, 20, 0, 0, 0, time.UTC)}
	tests := []struct {
		f    Filter
		want bool
	}{
		{Filter{}, true},
		{Filter{Statuses: []match.Status{match.NotFound, match.Mismatch}}, true},
		{Filter{Statuses: []match.Status{match.Verified}}, false},
		{Filter{Facilities: []string{"F2", "F1"}}, true},
		{Filter{Facilities: []string{"F2"}}, false},
		{Filter{Communes: []string{"00001"}}, true},
		{Filter{Communes: []string{"00002"}}, false},
		{Filter{From: "2021-08-15", To: "2021-08-15"}, true},
		{Filter{From: "2021-08-16"}, false},
		{Filter{To: "2021-08-14"}, false},
		{Filter{DateField: ReceivedAt, From: "2021-08-01", To: "2021-08-01"}, true},
		{Filter{DateField: ReceivedAt, To: "2021-07-31"}, false},
		{Filter{Statuses: []match.Status{match.NotFound}, Facilities: []string{"F1"}, Communes: []string{"00001"}, From: "2021-01-01"}, true},
	}
	for _, tt := range tests {
		if got := tt.f.Matches(&d); got != tt.want {
			t.Errorf("%s: Matches = %v, want %v", tt.f, got, tt.want)
		}
	}
}

func TestFilterString(t *testing.T) {
	f := Filter{Statuses: []match.Status{match.NotFound}, Facilities: []string{"F1", "F2"}, DateField: ReceivedAt, From: "2022-01-01"}
	if got, want := f.String(), "--status NOT_FOUND --facility F1,F2 --date received_at --from 2022-01-01"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got := (Filter{}).String(); got != "(all doses)" {
		t.Errorf("empty filter: %q", got)
	}
}

func FuzzDecodeSelector(f *testing.F) {
	files, _ := filepath.Glob("testdata/selectors/*.json")
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"stage":"match","status":[""]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		sel, err := DecodeSelector(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, vaxpass.ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		// A decoded selector is canonical: normalising again changes nothing.
		again := sel
		again.Statuses = slices.Clone(sel.Statuses)
		if err := again.Normalize(); err != nil || !sameWork(sel.Stage, sel.Filter, again.Stage, again.Filter) {
			t.Fatalf("not canonical: %+v -> %+v, %v", sel, again, err)
		}
	})
}

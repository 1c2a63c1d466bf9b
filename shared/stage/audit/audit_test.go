package audit_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/stage/audit"
)

var t0 = time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)

func valid() audit.Entry {
	return audit.Entry{At: t0, Actor: "ops", Action: audit.ActionRevocation, Reason: "lost phone",
		UVCIs: []string{"URN:UVCI:01:VN:ABC#D"}, Counts: map[string]int64{"revoked": 1}}
}

func TestEntryValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(e *audit.Entry)
		field string // "" = valid
	}{
		{"valid", func(*audit.Entry) {}, ""},
		{"no time", func(e *audit.Entry) { e.At = time.Time{} }, "at"},
		{"no actor", func(e *audit.Entry) { e.Actor = "" }, "actor"},
		{"actor with newline", func(e *audit.Entry) { e.Actor = "a\nb" }, "actor"},
		{"upper-case action", func(e *audit.Entry) { e.Action = "Revoke" }, "action"},
		{"empty action", func(e *audit.Entry) { e.Action = "" }, "action"},
		{"reason too long", func(e *audit.Entry) { e.Reason = strings.Repeat("x", audit.MaxReason+1) }, "reason"},
		{"reason multiline ok", func(e *audit.Entry) { e.Reason = "a\nb" }, ""},
		{"reason with NUL", func(e *audit.Entry) { e.Reason = "a\x00" }, "reason"},
		{"id with space", func(e *audit.Entry) { e.Doses = []string{"f/a b"} }, "doses[0]"},
		{"empty id", func(e *audit.Entry) { e.UVCIs = []string{""} }, "uvcis[0]"},
		{"too many ids", func(e *audit.Entry) { e.UVCIs = make([]string, audit.MaxIDs+1) }, "doses/uvcis/facilities"},
		{"bad run id", func(e *audit.Entry) { e.RunID = "a b" }, "run_id"},
		{"bad param key", func(e *audit.Entry) { e.Params = map[string]string{"Window": "30d"} }, "params"},
		{"negative count", func(e *audit.Entry) { e.Counts = map[string]int64{"renewed": -1} }, "counts.renewed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := valid()
			tc.edit(&e)
			err := e.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, audit.ErrInvalid) {
				t.Fatalf("Validate = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q does not name %s", err, tc.field)
			}
		})
	}
}

func TestQueryMatchesAndValidate(t *testing.T) {
	e := valid()
	tests := []struct {
		q    audit.Query
		want bool
	}{
		{audit.Query{}, true},
		{audit.Query{From: t0}, true},
		{audit.Query{From: t0.Add(time.Second)}, false},
		{audit.Query{To: t0}, false}, // to is exclusive
		{audit.Query{To: t0.Add(time.Nanosecond)}, true},
		{audit.Query{Action: audit.ActionRevocation}, true},
		{audit.Query{Action: audit.ActionRenewal}, false},
		{audit.Query{Actor: "ops"}, true},
		{audit.Query{Actor: "someone"}, false},
	}
	for _, tc := range tests {
		if got := tc.q.Matches(&e); got != tc.want {
			t.Errorf("%+v.Matches = %v, want %v", tc.q, got, tc.want)
		}
	}
	bad := []audit.Query{
		{Limit: 0}, {Limit: audit.MaxLimit + 1}, {Limit: 1, From: t0, To: t0}, {Limit: 1, Action: "A B"}, {Limit: 1, After: "x y"},
	}
	for _, q := range bad {
		if err := q.Validate(); !errors.Is(err, audit.ErrInvalid) {
			t.Errorf("%+v.Validate = %v, want ErrInvalid", q, err)
		}
	}
}

func TestChunks(t *testing.T) {
	ids := []string{"a", "b", "c", "d", "e"}
	got := audit.Chunks(ids, 2)
	if len(got) != 3 || len(got[0]) != 2 || len(got[2]) != 1 || got[2][0] != "e" {
		t.Fatalf("Chunks = %v", got)
	}
	// A chunk never grows into the next one's elements.
	got[0] = append(got[0], "x")
	if ids[2] != "c" {
		t.Fatal("appending to a chunk overwrote the input")
	}
	if audit.Chunks(nil, 3) != nil {
		t.Fatal("Chunks(nil) should be nil")
	}
}

func TestWriterFormats(t *testing.T) {
	e := valid()
	e.ID = "0001"
	e.Reason = "=HYPERLINK(\"x\")" // CSV injection attempt
	e.Params = map[string]string{"window": "30d", "cutoff": "2025-04-01"}
	var buf bytes.Buffer
	w, err := audit.NewWriter(&buf, audit.FormatJSONL)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(e); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	var back audit.Entry
	if err := json.Unmarshal(bytes.TrimSpace(buf.Bytes()), &back); err != nil {
		t.Fatalf("JSONL line: %v", err)
	}
	if back.ID != e.ID || back.Reason != e.Reason || !back.At.Equal(e.At) || back.Params["window"] != "30d" {
		t.Errorf("JSONL round trip: %+v", back)
	}

	buf.Reset()
	if w, err = audit.NewWriter(&buf, audit.FormatCSV); err != nil {
		t.Fatal(err)
	}
	if err := w.Write(e); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || strings.Join(rows[0], ",") != strings.Join(audit.CSVHeader, ",") {
		t.Fatalf("CSV rows: %q", rows)
	}
	row := map[string]string{}
	for i, h := range audit.CSVHeader {
		row[h] = rows[1][i]
	}
	if row["reason"] != "'"+e.Reason {
		t.Errorf("reason cell %q: a formula must be defused", row["reason"])
	}
	if row["params"] != "cutoff=2025-04-01 window=30d" || row["counts"] != "revoked=1" || row["uvcis"] != e.UVCIs[0] {
		t.Errorf("row %v", row)
	}

	// An empty CSV export still has its header.
	buf.Reset()
	w, _ = audit.NewWriter(&buf, audit.FormatCSV)
	if err := w.Flush(); err != nil || strings.TrimSpace(buf.String()) != strings.Join(audit.CSVHeader, ",") {
		t.Errorf("empty CSV = %q, %v", buf.String(), err)
	}
	if _, err := audit.NewWriter(&buf, "xml"); !errors.Is(err, audit.ErrInvalid) {
		t.Errorf("NewWriter(xml) = %v", err)
	}
}

// memLog is the smallest audit.Reader: All must page through it with cursors.
type memLog []audit.Entry

func (m memLog) Entries(_ context.Context, q audit.Query) ([]audit.Entry, string, error) {
	var out []audit.Entry
	for _, e := range m {
		if e.ID <= q.After || !q.Matches(&e) {
			continue
		}
		if len(out) == q.Limit {
			return out, out[len(out)-1].ID, nil
		}
		out = append(out, e)
	}
	return out, "", nil
}

func TestAllPages(t *testing.T) {
	var log memLog
	for i := range 25 {
		e := valid()
		e.ID = string(rune('a' + i))
		e.At = t0.Add(time.Duration(i) * time.Minute)
		log = append(log, e)
	}
	var got []string
	err := audit.All(context.Background(), log, audit.Query{Limit: 4, From: t0.Add(5 * time.Minute)}, func(e audit.Entry) error {
		got = append(got, e.ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 20 || got[0] != "f" || got[19] != "y" {
		t.Fatalf("All visited %v", got)
	}
	stop := errors.New("stop")
	n := 0
	if err := audit.All(context.Background(), log, audit.Query{}, func(audit.Entry) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("All did not stop at fn's error: %v after %d", err, n)
	}
}

func FuzzEntryValidate(f *testing.F) {
	f.Add("ops", "revocation", "lost phone", "URN:UVCI:01:VN:ABC#D")
	f.Add("", "", "", "")
	f.Add("a\nb", "Renewal", strings.Repeat("x", 2000), "a b")
	f.Fuzz(func(t *testing.T, actor, action, reason, id string) {
		e := audit.Entry{At: t0, Actor: actor, Action: action, Reason: reason, UVCIs: []string{id}}
		err := e.Validate()
		if err != nil && !errors.Is(err, audit.ErrInvalid) {
			t.Fatalf("error not wrapping ErrInvalid: %v", err)
		}
		if err == nil {
			// What validates survives both export formats.
			var buf bytes.Buffer
			for _, format := range []string{audit.FormatJSONL, audit.FormatCSV} {
				w, _ := audit.NewWriter(&buf, format)
				if err := w.Write(e); err != nil {
					t.Fatalf("%s: %v", format, err)
				}
				if err := w.Flush(); err != nil {
					t.Fatalf("%s: %v", format, err)
				}
			}
		}
	})
}

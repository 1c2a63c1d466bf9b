package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/vaccine"
	"github.com/vaxpass/vaxpass/shared/store/embedded"
	"github.com/vaxpass/vaxpass/shared/store/embedded/queue"
	"github.com/vaxpass/vaxpass/shared/testkit/cli"
	"github.com/vaxpass/vaxpass/shared/testkit/server"
	"github.com/vaxpass/vaxpass/shared/tool/synth"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// pollEvery is how often the polls look; their deadlines bound a hung system, they are
// not speed checks: a slow machine (or a data directory on a slow disk) must still pass.
const pollEvery = 100 * time.Millisecond

// client is a facility's (or, without a key, the public's) view of a server's API; it
// fails t.
type client struct {
	*server.Client
	t *testing.T
}

// newClient is a client of srv holding key ("" for none).
func newClient(t *testing.T, srv *server.Process, key string) *client {
	return &client{Client: srv.Client(key), t: t}
}

// do sends a request and returns the status and body; a transport error fails the test.
func (c *client) do(method, path string, body []byte, contentType string) (int, []byte, http.Header) {
	c.t.Helper()
	r := c.Do(c.t, method, path, body, contentType)
	return r.Status, r.Body, r.Header
}

// try sends a request; a transport error (the server was killed) is returned.
func (c *client) try(method, path string, body []byte, contentType string) (int, []byte, http.Header, error) {
	r, err := c.Send(method, path, body, contentType)
	return r.Status, r.Body, r.Header, err
}

// call sends in as JSON (nil: no body), requires the status and decodes the answer into out.
func (c *client) call(method, path string, in any, want int, out any) []byte {
	c.t.Helper()
	return c.Expect(c.t, method, path, in, want, out).Body
}

// Contract shapes, declared here rather than imported: the test reads what the API says.

type fieldError struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

type uploadResult struct {
	SourceID string       `json:"source_id"`
	Status   string       `json:"status"`
	Errors   []fieldError `json:"errors"`
}

type uploadReport struct {
	Accepted   int            `json:"accepted"`
	Duplicates int            `json:"duplicates"`
	Rejected   int            `json:"rejected"`
	Results    []uploadResult `json:"results"`
}

type matchView struct {
	Status    string            `json:"status"`
	Reasons   []string          `json:"reasons"`
	Corrected map[string]string `json:"corrected"`
}

type certView struct {
	UVCI      string    `json:"uvci"`
	Status    string    `json:"status"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

type doseView struct {
	dose.Record
	Match       matchView `json:"match"`
	Certificate *certView `json:"certificate"`
}

type lookupFields struct {
	FullName          string `json:"full_name"`
	DateOfBirth       string `json:"date_of_birth"`
	Nationality       string `json:"nationality"`
	Disease           string `json:"disease"`
	DosesReceived     int    `json:"doses_received"`
	DateOfVaccination string `json:"date_of_vaccination"`
	DoseNumber        int    `json:"dose_number"`
	TotalDoses        int    `json:"total_doses"`
	Vaccine           string `json:"vaccine"`
	VaccineProduct    string `json:"vaccine_product"`
	Manufacturer      string `json:"manufacturer"`
	CertificateID     string `json:"certificate_id"`
}

type lookupAnswer struct {
	UVCI      string       `json:"uvci"`
	HC1       string       `json:"hc1"`
	QRPNG     string       `json:"qr_png"`
	ExpiresAt time.Time    `json:"expires_at"`
	Fields    lookupFields `json:"fields"`
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field"`
	} `json:"error"`
}

// upload posts records (raw JSON each) and checks the report's counts add up.
func (c *client) upload(records []json.RawMessage) uploadReport {
	c.t.Helper()
	var rep uploadReport
	c.call("POST", "/v1/doses", map[string]any{"records": records}, http.StatusOK, &rep)
	if len(rep.Results) != len(records) {
		c.t.Fatalf("upload of %d records answered %d results", len(records), len(rep.Results))
	}
	if rep.Accepted+rep.Duplicates+rep.Rejected != len(records) {
		c.t.Fatalf("upload counts %d+%d+%d do not add up to %d records", rep.Accepted, rep.Duplicates, rep.Rejected, len(records))
	}
	n := map[string]int{}
	for _, r := range rep.Results {
		n[r.Status]++
	}
	if n["accepted"] != rep.Accepted || n["duplicate"] != rep.Duplicates || n["rejected"] != rep.Rejected {
		c.t.Fatalf("upload counts %+v disagree with the results %v", rep, n)
	}
	return rep
}

// dose reads GET /v1/doses/{source_id}.
func (c *client) dose(sourceID string) doseView {
	c.t.Helper()
	var v doseView
	c.call("GET", "/v1/doses/"+url.PathEscape(sourceID), nil, http.StatusOK, &v)
	return v
}

// Match statuses of the contract.
var statuses = []string{"PENDING", "VERIFIED", "NO_ID", "INVALID_ID", "NOT_FOUND", "MISMATCH"}

// worklist reads every page of GET /v1/worklist?status=...
func (c *client) worklist(status string) []doseView {
	c.t.Helper()
	var all []doseView
	after := ""
	for {
		var page struct {
			Records []doseView `json:"records"`
			Next    string     `json:"next"`
		}
		c.call("GET", "/v1/worklist?status="+status+"&after="+url.QueryEscape(after), nil, http.StatusOK, &page)
		for _, v := range page.Records {
			if v.Match.Status != status {
				c.t.Fatalf("worklist %s holds %s in status %s", status, v.SourceID, v.Match.Status)
			}
		}
		all = append(all, page.Records...)
		if page.Next == "" {
			return all
		}
		after = page.Next
	}
}

// pendingCount is the number of the facility's records not matched yet.
func (c *client) pendingCount() int {
	c.t.Helper()
	return len(c.worklist("PENDING"))
}

// allDoses reads the facility's records from every worklist: source_id -> view. Call it
// when nothing is being matched: a record moving between lists could be seen twice.
func (c *client) allDoses() map[string]doseView {
	c.t.Helper()
	out := map[string]doseView{}
	for _, st := range statuses {
		for _, v := range c.worklist(st) {
			if _, dup := out[v.SourceID]; dup {
				c.t.Fatalf("record %s is in two worklists", v.SourceID)
			}
			out[v.SourceID] = v
		}
	}
	return out
}

// waitFor polls cond until it reports done, failing the test with cond's last status
// when timeout passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (done bool, status string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done, status := cond()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not done within %s: %s", what, timeout, status)
		}
		time.Sleep(pollEvery)
	}
}

// waitMatched waits until the facility has total records and none is PENDING.
func waitMatched(t *testing.T, c *client, total int, timeout time.Duration) map[string]doseView {
	t.Helper()
	waitFor(t, "matching", timeout, func() (bool, string) {
		n := c.pendingCount()
		return n == 0, fmt.Sprintf("%d of %d records pending", n, total)
	})
	all := c.allDoses()
	if len(all) != total {
		t.Fatalf("the facility holds %d records, want %d", len(all), total)
	}
	return all
}

// registryPerson is one line of the generated registry.
type registryPerson struct {
	ID, FullName, DOB, Gender string
}

// generated is the output of `vaxpass registry generate`.
type generated struct {
	dir      string
	raw      []json.RawMessage // records.jsonl lines, as generated
	records  []dose.Record
	truth    []synth.Truth
	index    map[string]int // source_id -> position
	registry map[string]registryPerson
}

func (g *generated) file(name string) string { return filepath.Join(g.dir, name) }

// generate runs `vaxpass registry generate` and reads its three files.
func generate(t *testing.T, people, records int, seed uint64, mix string) *generated {
	t.Helper()
	g := &generated{dir: t.TempDir(), index: map[string]int{}, registry: map[string]registryPerson{}}
	args := []string{"registry", "generate", "--people", fmt.Sprint(people), "--seed", fmt.Sprint(seed), "--out", g.dir}
	if records > 0 {
		args = append(args, "--records", fmt.Sprint(records))
	}
	if mix != "" {
		args = append(args, "--mix", mix)
	}
	cli.Must(t, args...)

	for i, line := range readLines(t, g.file(synth.RecordsFile)) {
		var r dose.Record
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("%s line %d: %v", synth.RecordsFile, i+1, err)
		}
		g.raw = append(g.raw, json.RawMessage(slices.Clone(line)))
		g.records = append(g.records, r)
		g.index[r.SourceID] = i
	}
	f, err := os.Open(g.file(synth.TruthFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := synth.ReadTruth(f, func(tr synth.Truth) error { g.truth = append(g.truth, tr); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(g.truth) != len(g.records) || len(g.records) == 0 {
		t.Fatalf("generator wrote %d records and %d truth lines", len(g.records), len(g.truth))
	}
	for i, tr := range g.truth {
		if tr.SourceID != g.records[i].SourceID {
			t.Fatalf("truth line %d is for %s, record line %d is %s", i+1, tr.SourceID, i+1, g.records[i].SourceID)
		}
	}

	rf, err := os.Open(g.file(synth.RegistryFile))
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	rows, err := csv.NewReader(rf).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", synth.RegistryFile, err)
	}
	if len(rows) < 2 || !slices.Equal(rows[0][:4], []string{"id_number", "full_name", "dob", "gender"}) {
		t.Fatalf("%s: unexpected header %v", synth.RegistryFile, rows[0])
	}
	for _, r := range rows[1:] {
		g.registry[r[0]] = registryPerson{ID: r[0], FullName: r[1], DOB: r[2], Gender: r[3]}
	}
	return g
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for line := range bytes.Lines(b) {
		if line = bytes.TrimSpace(line); len(line) > 0 {
			out = append(out, line)
		}
	}
	return out
}

// person is a vaccinated person of the generated data, with what must happen to them.
type person struct {
	ID      string // registry ID: the person ID of verified records
	Class   synth.Class
	Sources []string // source_ids of their uploaded records, in generation order
	// Verified: every record of theirs must match VERIFIED. Eligible: verified, and their
	// doses complete a course (vaccine.Assess, the rule the issuer applies); Assessment is
	// that verdict.
	Verified, Eligible bool
	Assessment         vaccine.Assessment
}

// people groups the uploaded generated records by person (the registry ID the truth names)
// and decides independently of the server who must get a certificate.
func (g *generated) people(t *testing.T, uploaded func(sourceID string) bool) map[string]*person {
	t.Helper()
	out := map[string]*person{}
	for _, tr := range g.truth {
		if !uploaded(tr.SourceID) {
			continue
		}
		p := out[tr.RegistryID]
		if p == nil {
			p = &person{ID: tr.RegistryID, Class: tr.Class}
			out[tr.RegistryID] = p
		}
		if p.Class != tr.Class {
			t.Fatalf("generator gave person %d records of classes %s and %s", len(out), p.Class, tr.Class)
		}
		p.Sources = append(p.Sources, tr.SourceID)
	}
	for _, p := range out {
		status, _ := p.Class.Expect()
		p.Verified = status == "VERIFIED"
		if !p.Verified {
			continue
		}
		var ds []vaccine.Dose
		for _, sid := range p.Sources {
			r := g.records[g.index[sid]]
			ds = append(ds, vaccine.Dose{Vaccine: vaccine.Code(r.Vaccine), DoseNumber: r.DoseNumber, VaccinatedOn: r.VaccinatedOn})
		}
		a, err := vaccine.Assess(ds)
		if err != nil {
			t.Fatalf("assess generated doses: %v", err)
		}
		p.Assessment, p.Eligible = a, a.Eligible
	}
	return out
}

// checkMatches compares every generated record's stored match with the generator's truth:
// status, reasons in order, and for VERIFIED records the corrected fields with the
// registry's values.
func checkMatches(t *testing.T, g *generated, all map[string]doseView, uploaded func(string) bool) {
	t.Helper()
	bad := 0
	for i, tr := range g.truth {
		if !uploaded(tr.SourceID) {
			continue
		}
		v, ok := all[tr.SourceID]
		if !ok {
			t.Errorf("record %s (class %s) is not stored", tr.SourceID, tr.Class)
			bad++
			continue
		}
		if v.Record != normalized(g.records[i]) {
			t.Errorf("record %s stored as %+v, sent %+v", tr.SourceID, v.Record, g.records[i])
		}
		var problems []string
		if v.Match.Status != string(tr.Status) {
			problems = append(problems, fmt.Sprintf("status %s, want %s", v.Match.Status, tr.Status))
		}
		if !slices.Equal(nonNil(v.Match.Reasons), nonNil(tr.Reasons)) {
			problems = append(problems, fmt.Sprintf("reasons %v, want %v", v.Match.Reasons, tr.Reasons))
		}
		if tr.Status == "VERIFIED" {
			reg := g.registry[tr.RegistryID]
			want := map[string]string{}
			for _, f := range tr.Corrected {
				switch f {
				case "full_name":
					want[f] = reg.FullName
				case "dob":
					want[f] = reg.DOB
				case "id_number":
					want[f] = reg.ID
				case "gender":
					want[f] = reg.Gender
				default:
					t.Fatalf("truth names an unknown corrected field %q", f)
				}
			}
			if !mapsEqual(v.Match.Corrected, want) {
				problems = append(problems, fmt.Sprintf("corrected %v, want %v", v.Match.Corrected, want))
			}
		}
		if len(problems) > 0 {
			bad++
			if bad <= 20 {
				t.Errorf("record %s (class %s): %s", tr.SourceID, tr.Class, strings.Join(problems, "; "))
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d records disagree with the truth", bad)
	}
}

// normalized is the record as the API stores it: trimmed, defaults applied.
func normalized(r dose.Record) dose.Record {
	r.Normalize()
	return r
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// waitCertificates polls GET /v1/doses/{source_id} of each person's first record until
// every one shows an issued certificate; it returns person ID -> UVCI.
func waitCertificates(t *testing.T, c *client, people []*person, timeout time.Duration) map[string]string {
	t.Helper()
	uvcis := map[string]string{}
	waitFor(t, "certificates", timeout, func() (bool, string) {
		for _, p := range people {
			if _, ok := uvcis[p.ID]; ok {
				continue
			}
			v := c.dose(p.Sources[0])
			if v.Certificate == nil {
				return false, fmt.Sprintf("%d of %d eligible people have their certificate", len(uvcis), len(people))
			}
			if v.Certificate.Status != "issued" || v.Certificate.UVCI == "" {
				t.Fatalf("person of record %s: certificate %+v, want issued", p.Sources[0], v.Certificate)
			}
			uvcis[p.ID] = v.Certificate.UVCI
		}
		return true, ""
	})
	return uvcis
}

// stored is a stopped server's data directory, opened to count what it holds.
type stored struct {
	db    *embedded.DB
	store *embedded.Store
}

// openStored opens a data directory no server runs on (the server holds its lock).
func openStored(t *testing.T, data string) *stored {
	t.Helper()
	db, err := embedded.Open(data)
	if err != nil {
		t.Fatalf("open the data directory: %v", err)
	}
	store, err := embedded.OpenStore(db, embedded.StoreOptions{})
	if err != nil {
		db.Close()
		t.Fatalf("open the store: %v", err)
	}
	return &stored{db: db, store: store}
}

func (s *stored) close(t *testing.T) {
	t.Helper()
	if err := s.db.Close(); err != nil {
		t.Fatalf("close the data directory: %v", err)
	}
}

// queues adds up the message counts of every queue in the database (the central signing
// queue, and any other the system keeps); a database without any queue fails the test,
// so that a renamed queue cannot make "empty" true by accident.
func (s *stored) queues(t *testing.T) queue.Counts {
	t.Helper()
	names, err := queue.Names(s.db.Bolt())
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("the database holds no queue: central signing never ran?")
	}
	var total queue.Counts
	for _, name := range names {
		q, err := queue.Open(s.db.Bolt(), name, queue.Config{})
		if err != nil {
			t.Fatal(err)
		}
		c, err := q.Counts(context.Background())
		if err != nil {
			t.Fatalf("queue %s: %v", name, err)
		}
		total.Visible += c.Visible
		total.InFlight += c.InFlight
		total.Delayed += c.Delayed
		total.Dead += c.Dead
	}
	return total
}

// certificates lists every stored certificate (any status) by person ID.
func (s *stored) certificates(t *testing.T) map[string][]vaxpass.Certificate {
	t.Helper()
	out := map[string][]vaxpass.Certificate{}
	cursor := ""
	for {
		certs, next, err := s.store.ListCertificates(context.Background(), cursor, 1000)
		if err != nil {
			t.Fatalf("list certificates: %v", err)
		}
		for _, c := range certs {
			out[c.PersonID] = append(out[c.PersonID], c)
		}
		if next == "" {
			return out
		}
		cursor = next
	}
}

// checkOneCertificateEach requires exactly one certificate, in status issued, for every
// eligible person, and none for anyone else; uvcis (when not nil) are the UVCIs the API
// showed.
func checkOneCertificateEach(t *testing.T, certs map[string][]vaxpass.Certificate, people map[string]*person, uvcis map[string]string) {
	t.Helper()
	eligible, bad := 0, 0
	for _, p := range people {
		cs := certs[p.ID]
		if !p.Eligible {
			if len(cs) > 0 {
				bad++
				t.Errorf("person of record %s (class %s, eligible %v) has %d certificates, want none", p.Sources[0], p.Class, p.Eligible, len(cs))
			}
			continue
		}
		eligible++
		switch {
		case len(cs) != 1:
			bad++
			var st []string
			for _, c := range cs {
				st = append(st, c.Status+"/"+c.RevokedReason)
			}
			t.Errorf("person of record %s has %d certificates %v, want exactly one", p.Sources[0], len(cs), st)
		case cs[0].Status != vaxpass.CertIssued || cs[0].Replaces != "":
			bad++
			t.Errorf("person of record %s: certificate status %q, replaces %q; want issued, replacing nothing", p.Sources[0], cs[0].Status, cs[0].Replaces)
		case uvcis != nil && uvcis[p.ID] != cs[0].UVCI:
			bad++
			t.Errorf("person of record %s: stored UVCI differs from the one the API showed", p.Sources[0])
		}
	}
	total := 0
	for id, cs := range certs {
		total += len(cs)
		if _, ok := people[id]; !ok {
			bad++
			t.Errorf("%d certificates for a person ID no uploaded record names", len(cs))
		}
	}
	if total != eligible {
		t.Errorf("%d certificates stored for %d eligible people", total, eligible)
	}
	if bad == 0 {
		t.Logf("%d eligible people, %d certificates, one each", eligible, total)
	}
}

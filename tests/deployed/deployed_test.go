// Package deployed runs the end-to-end scenarios against a deployed stack -- AWS, or the
// emulator after .ci/emulator/deploy -- through its public HTTP API and the functions'
// triggers, all for real. TestDeployedStack: API Gateway -> facility API -> DynamoDB ->
// stream -> matcher; facility signing (API and the schedule's payload) -> SQS -> central
// signing -> KMS; lookup, QR, verification, trust list, the page; revocation, renewal, the
// dead-letter queue and its redrive. TestDeployedOperatorWalk (operator_walk_test.go): an
// operator's walk with the CLI only (`vaxpass ... --backend aws --stack NAME`) and the
// HTTP API, the ops function killed in the middle of a reprocessing run on an emulator.
//
// They run only when told where the stack is:
//
//	VAXPASS_DEPLOYED_URL      the API's base URL (AWS: the ApiUrl output; the emulator:
//	                          http://127.0.0.1:4566/_aws/execute-api/<ApiId>)
//	VAXPASS_DEPLOYED_OUTPUTS  a file of the stack's outputs, KEY=VALUE lines
//	                          (.ci/emulator/outputs writes it)
//	VAXPASS_DEPLOYED_CSCA     optional: the CSCA certificate (PEM) the DSC must chain to
//
// plus the AWS SDK's own environment (credentials, region; AWS_ENDPOINT_URL for an
// emulator). Each test registers its own facility (a new KMS key) and loads its own
// synthetic people, so they can run against a stack with other data in it. The walk
// publishes a DSC of its own CSCA (a roll-over: earlier DSCs stay on the trust list), so
// TestDeployedStack, whose DSC must chain to VAXPASS_DEPLOYED_CSCA, runs first (Go runs
// tests in file order).
package deployed

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/vaxpass/vaxpass/shared/domain/dose"
	"github.com/vaxpass/vaxpass/shared/domain/match"
	"github.com/vaxpass/vaxpass/shared/domain/vaccine"
	"github.com/vaxpass/vaxpass/shared/hc1/hcert"
	"github.com/vaxpass/vaxpass/shared/hc1/qrscan"
	"github.com/vaxpass/vaxpass/shared/hc1/trust"
	"github.com/vaxpass/vaxpass/shared/stage/renewal"
	"github.com/vaxpass/vaxpass/shared/store/awsddb"
	"github.com/vaxpass/vaxpass/shared/testkit/cli"
	"github.com/vaxpass/vaxpass/shared/tool/registry"
	"github.com/vaxpass/vaxpass/shared/tool/synth"
	"github.com/vaxpass/vaxpass/shared/wire/cloud"
	"github.com/vaxpass/vaxpass/shared/wire/cloud/admin"
)

// Environment of the test.
const (
	EnvURL     = "VAXPASS_DEPLOYED_URL"
	EnvOutputs = "VAXPASS_DEPLOYED_OUTPUTS"
	EnvCSCA    = "VAXPASS_DEPLOYED_CSCA"
)

// patience bounds each asynchronous step (stream, queue, KMS); an emulator on a busy CI
// machine is slow, AWS is faster.
const patience = 3 * time.Minute

type stack struct {
	t       *testing.T
	base    string
	outputs map[string]string
	cfg     aws.Config
	sys     *cloud.Stack
	http    *http.Client
}

func openStack(t *testing.T) *stack {
	t.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		t.Skipf("deployed-stack test skipped: set %s (the API's base URL) and %s (the stack outputs file) to run it against a deployed stack; `make test-aws` deploys one to the emulator and sets them", EnvURL, EnvOutputs)
	}
	outputs, err := readOutputs(os.Getenv(EnvOutputs))
	if err != nil {
		t.Fatalf("%s: %v", EnvOutputs, err)
	}
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The stack as its operator opens it (dead letters included).
	a, err := admin.New(ctx, cfg, outputs["StackName"], outputs)
	if err != nil {
		t.Fatal(err)
	}
	return &stack{t: t, base: strings.TrimRight(base, "/"), outputs: outputs, cfg: cfg, sys: a.Stack, http: &http.Client{Timeout: time.Minute}}
}

// operator returns the CLI run against this stack (`--backend aws --stack NAME`) as the
// operator user: it answers stdout, and fails the test on a non-zero exit.
func (s *stack) operator(t *testing.T, user string) func(args ...string) string {
	t.Helper()
	name := s.outputs["StackName"]
	if name == "" {
		t.Fatal("stack output StackName missing")
	}
	return func(args ...string) string {
		t.Helper()
		r := cli.Runner{Env: []string{"USER=" + user, "VAXPASS_STACK="}}.Run(t, append(args, "--backend", "aws", "--stack", name)...)
		if r.Code != 0 {
			t.Fatalf("vaxpass %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
		}
		return r.Stdout
	}
}

// randomTag is 8 random hex digits: names a test's facilities apart from earlier runs'.
func randomTag() string {
	var rnd [4]byte
	rand.Read(rnd[:])
	return hex.EncodeToString(rnd[:])
}

func readOutputs(path string) (map[string]string, error) {
	if path == "" {
		return nil, fmt.Errorf("not set")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %q is not KEY=VALUE", line)
		}
		out[k] = v
	}
	return out, sc.Err()
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (s *stack) call(method, path, apiKey, contentType string, body []byte) response {
	s.t.Helper()
	req, err := http.NewRequest(method, s.base+path, bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+apiKey)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func (s *stack) json(method, path, apiKey string, in, out any, wantStatus int) {
	s.t.Helper()
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			s.t.Fatal(err)
		}
	}
	r := s.call(method, path, apiKey, "application/json", body)
	if r.status != wantStatus {
		s.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.status, wantStatus, r.body)
	}
	if out != nil {
		if err := json.Unmarshal(r.body, out); err != nil {
			s.t.Fatalf("%s %s: %v: %s", method, path, err, r.body)
		}
	}
}

// invoke calls a function directly (RequestResponse) and decodes its answer.
func (s *stack) invoke(output string, payload any, out any) {
	s.t.Helper()
	name := s.outputs[output]
	if name == "" {
		s.t.Fatalf("stack output %s missing", output)
	}
	in, err := json.Marshal(payload)
	if err != nil {
		s.t.Fatal(err)
	}
	res, err := lambda.NewFromConfig(s.cfg).Invoke(context.Background(), &lambda.InvokeInput{FunctionName: aws.String(name), Payload: in})
	if err != nil {
		s.t.Fatalf("invoke %s: %v", output, err)
	}
	if res.FunctionError != nil {
		s.t.Fatalf("invoke %s: function error %s: %s", output, aws.ToString(res.FunctionError), res.Payload)
	}
	if out != nil {
		if err := json.Unmarshal(res.Payload, out); err != nil {
			s.t.Fatalf("invoke %s: %v: %s", output, err, res.Payload)
		}
	}
}

// renewAll starts a renewal run by direct invoke (detached: the run fans out from the
// renewal queue) and follows it until it is finished.
func (s *stack) renewAll(t *testing.T, window, actor string) renewal.Summary {
	t.Helper()
	var sum renewal.Summary
	s.invoke("RenewalFunction", cloud.RenewalRequest{Action: cloud.ActionRenew, Window: window, Actor: actor, Detach: true}, &sum)
	if sum.RunID == "" {
		t.Fatalf("renewal started without a run: %+v", sum)
	}
	deadline := time.Now().Add(30 * time.Minute)
	for sum.FinishedAt.IsZero() {
		if time.Now().After(deadline) {
			t.Fatalf("renewal run %s not finished: %+v", sum.RunID, sum)
		}
		time.Sleep(2 * time.Second)
		s.invoke("RenewalFunction", cloud.RenewalRequest{Action: cloud.ActionRenewalStatus, RunID: sum.RunID}, &sum)
	}
	return sum
}

// eventually polls check until it reports done or patience runs out.
func eventually(t *testing.T, what string, check func() (done bool, state string)) {
	t.Helper()
	deadline := time.Now().Add(patience)
	state := ""
	for {
		var done bool
		if done, state = check(); done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not done after %s (last state: %s)", what, patience, state)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// population is a synthetic registry and dose records with their expected match status.
type population struct {
	records  []dose.Record
	truth    []synth.Truth
	registry map[string]match.Person
}

func generate(t *testing.T, people int) population {
	t.Helper()
	var seed [8]byte
	rand.Read(seed[:])
	dir := t.TempDir()
	cfg := synth.Config{People: people, Records: 2 * people, Seed: uint64(seed[0]) | uint64(seed[1])<<8 | uint64(seed[2])<<16 | uint64(seed[3])<<24}
	if _, err := synth.WriteDir(context.Background(), dir, cfg, nil); err != nil {
		t.Fatal(err)
	}
	var p population
	p.records = readJSONL[dose.Record](t, filepath.Join(dir, synth.RecordsFile))
	p.truth = readJSONL[synth.Truth](t, filepath.Join(dir, synth.TruthFile))
	f, err := os.Open(filepath.Join(dir, synth.RegistryFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mem, _, err := registry.LoadMemory(f, func(err error) { t.Fatalf("registry line: %v", err) }, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.registry = map[string]match.Person{}
	for person := range mem.All {
		p.registry[person.IDNumber] = person
	}
	return p
}

func readJSONL[T any](t *testing.T, path string) []T {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	for line := range strings.Lines(string(b)) {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var v T
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, v)
	}
	return out
}

// eligible returns the registry IDs of the people whose verified doses make a full course.
func (p population) eligible() []string {
	byPerson := map[string][]vaccine.Dose{}
	for i, tr := range p.truth {
		if tr.Status == match.Verified {
			r := p.records[i]
			byPerson[tr.RegistryID] = append(byPerson[tr.RegistryID], vaccine.Dose{Vaccine: vaccine.Code(r.Vaccine), DoseNumber: r.DoseNumber, VaccinatedOn: r.VaccinatedOn})
		}
	}
	var out []string
	for id, ds := range byPerson {
		if a, err := vaccine.Assess(ds); err == nil && a.Eligible {
			out = append(out, id)
		}
	}
	return out
}

type uploadAnswer struct {
	Accepted   int `json:"accepted"`
	Duplicates int `json:"duplicates"`
	Rejected   int `json:"rejected"`
	Results    []struct {
		SourceID string `json:"source_id"`
		Status   string `json:"status"`
	} `json:"results"`
}

type doseAnswer struct {
	Match struct {
		Status  match.Status `json:"status"`
		Reasons []string     `json:"reasons"`
	} `json:"match"`
	Certificate *struct {
		UVCI   string `json:"uvci"`
		Status string `json:"status"`
	} `json:"certificate"`
}

type lookupAnswer struct {
	UVCI      string    `json:"uvci"`
	HC1       string    `json:"hc1"`
	QRPNG     string    `json:"qr_png"`
	ExpiresAt time.Time `json:"expires_at"`
	Fields    struct {
		FullName      string `json:"full_name"`
		CertificateID string `json:"certificate_id"`
	} `json:"fields"`
}

// upload posts records and waits until the matcher has judged every one as the truth says.
func (s *stack) uploadAndMatch(t *testing.T, apiKey string, p population, from, to int) {
	t.Helper()
	var up uploadAnswer
	s.json("POST", "/v1/doses", apiKey, map[string]any{"records": p.records[from:to]}, &up, http.StatusOK)
	if up.Accepted != to-from || up.Rejected != 0 || up.Duplicates != 0 {
		t.Fatalf("upload of %d records: %+v", to-from, up)
	}
	var again uploadAnswer
	s.json("POST", "/v1/doses", apiKey, map[string]any{"records": p.records[from:to]}, &again, http.StatusOK)
	if again.Duplicates != to-from || again.Accepted != 0 {
		t.Fatalf("re-sent upload is not idempotent: %+v", again)
	}
	for i := from; i < to; i++ {
		path := "/v1/doses/" + p.records[i].SourceID
		want := p.truth[i].Status
		eventually(t, "match of "+p.records[i].SourceID, func() (bool, string) {
			var d doseAnswer
			s.json("GET", path, apiKey, nil, &d, http.StatusOK)
			return d.Match.Status != match.Pending && d.Match.Status != "", string(d.Match.Status)
		})
		var d doseAnswer
		s.json("GET", path, apiKey, nil, &d, http.StatusOK)
		if d.Match.Status != want {
			t.Errorf("record %s (%s) matched %s %v, want %s", p.records[i].SourceID, p.truth[i].Class, d.Match.Status, d.Match.Reasons, want)
		}
	}
}

// lookup waits for a person's certificate.
func (s *stack) lookup(t *testing.T, person match.Person) lookupAnswer {
	t.Helper()
	q := map[string]string{"id_number": person.IDNumber, "full_name": person.FullName, "dob": person.DOB}
	var ans lookupAnswer
	eventually(t, "certificate of a fully vaccinated person", func() (bool, string) {
		r := s.call("POST", "/v1/passports/lookup", "", "application/json", mustJSON(t, q))
		switch r.status {
		case http.StatusOK:
			if err := json.Unmarshal(r.body, &ans); err != nil {
				t.Fatalf("lookup answer: %v", err)
			}
			return true, ""
		case http.StatusNotFound, http.StatusTooManyRequests:
			return false, fmt.Sprint(r.status)
		}
		t.Fatalf("lookup: %d %s", r.status, r.body)
		return false, ""
	})
	return ans
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDeployedStack(t *testing.T) {
	s := openStack(t)
	ctx := context.Background()
	start := time.Now()
	step := func(name string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), name) }

	// The page and its files come through API Gateway from the public function.
	page := s.call("GET", "/", "", "", nil)
	if page.status != http.StatusOK || !strings.HasPrefix(page.header.Get("Content-Type"), "text/html") || !bytes.Contains(page.body, []byte("/static/app.js?v=")) {
		t.Fatalf("GET /: %d %s", page.status, page.header.Get("Content-Type"))
	}
	svg := s.call("GET", "/static/emblem.svg", "", "", nil)
	if svg.status != http.StatusOK || svg.header.Get("Content-Type") != "image/svg+xml" || !bytes.HasPrefix(bytes.TrimSpace(svg.body), []byte("<svg")) {
		t.Fatalf("GET /static/emblem.svg: %d %q %.40q", svg.status, svg.header.Get("Content-Type"), svg.body)
	}
	if r := s.call("POST", "/v1/doses", "vxp_not-a-key", "application/json", []byte(`{"records":[]}`)); r.status != http.StatusUnauthorized {
		t.Fatalf("upload with a wrong key: %d %s", r.status, r.body)
	}
	step("page, static file, unauthorized upload")

	// The deployed tables are the store's: CreateTables keeps existing tables only when
	// their keys and indexes are the ones awsddb queries.
	if err := awsddb.CreateTables(ctx, dynamodb.NewFromConfig(s.cfg), awsddb.Tables{
		Doses: s.outputs["DosesTable"], Certificates: s.outputs["CertificatesTable"], Facilities: s.outputs["FacilitiesTable"],
	}); err != nil {
		t.Fatalf("deployed tables are not awsddb's: %v", err)
	}

	// A facility of its own (a new KMS key) and a population in the registry table.
	facility := "e2e-" + randomTag()
	apiKey, err := s.sys.AddFacility(ctx, facility, "End-to-end test site")
	if err != nil {
		t.Fatalf("register facility: %v", err)
	}
	pop := generate(t, 24)
	if n, err := s.sys.LoadRegistry(ctx, func(yield func(match.Person) bool) {
		for _, p := range pop.registry {
			if !yield(p) {
				return
			}
		}
	}); err != nil || n != len(pop.registry) {
		t.Fatalf("load registry: %d of %d, %v", n, len(pop.registry), err)
	}
	step(fmt.Sprintf("facility %s registered, %d people loaded", facility, len(pop.registry)))

	// First half: upload -> stream -> matcher; then POST /v1/signatures (API -> facility
	// signing function) -> SQS -> central signing -> KMS.
	half := len(pop.records) / 2
	for half < len(pop.records) && pop.truth[half].RegistryID == pop.truth[half-1].RegistryID {
		half++ // keep a person's doses in one half
	}
	first := population{records: pop.records[:half], truth: pop.truth[:half], registry: pop.registry}
	s.uploadAndMatch(t, apiKey, pop, 0, half)
	step(fmt.Sprintf("%d records uploaded and matched through the stream", half))
	var signed struct {
		Signed int `json:"signed"`
	}
	s.json("POST", "/v1/signatures", apiKey, nil, &signed, http.StatusOK)
	if want := len(first.eligible()); signed.Signed != want {
		t.Fatalf("POST /v1/signatures signed %d people, want %d", signed.Signed, want)
	}
	if signed.Signed == 0 {
		t.Fatal("the generated first half has no fully vaccinated person; the scenario needs one")
	}
	step(fmt.Sprintf("facility signed %d people", signed.Signed))

	person := pop.registry[first.eligible()[0]]
	cert := s.lookup(t, person)
	step("certificate issued by central signing (SQS -> KMS)")
	s.checkCertificate(t, cert, person)
	step("certificate verified: API, trust list, DSC chain, KMS key, QR")
	s.checkKeyPolicies(t, facility)
	step("key policies: each signing role signs with its own keys only")

	// Second half: signed by the daily schedule's payload, invoked directly.
	s.uploadAndMatch(t, apiKey, pop, half, len(pop.records))
	second := population{records: pop.records[half:], truth: pop.truth[half:], registry: pop.registry}
	var run cloud.SigningRun
	s.invoke("FacilitySigningFunction", map[string]string{"action": cloud.ActionSignAllFacilities}, &run)
	// The schedule starts a run for every facility and returns; the runs fan out from the
	// signing queue.
	if run.Facilities < 1 || len(run.Runs) != run.Facilities || len(run.Failed) != 0 {
		t.Fatalf("scheduled facility signing: %+v, want a run for each facility", run)
	}
	for _, id := range second.eligible() {
		s.lookup(t, pop.registry[id])
	}
	step(fmt.Sprintf("scheduled signing: %d runs started, %d certificates for the second half", len(run.Runs), len(second.eligible())))

	// Ops with the operator's credentials (wire.System over the stack): revoke, and
	// verification says so.
	revoked, err := s.sys.Sys.Revoke(ctx, "e2e", cert.UVCI, "end-to-end test")
	if err != nil || !strings.EqualFold(revoked.UVCI, cert.UVCI) {
		t.Fatalf("revoke: %+v %v", revoked, err)
	}
	var verdict struct {
		Valid  bool   `json:"valid"`
		Reason string `json:"reason"`
	}
	s.json("POST", "/v1/verify", "", map[string]string{"hc1": cert.HC1}, &verdict, http.StatusOK)
	if verdict.Valid {
		t.Errorf("a revoked certificate verifies as valid")
	}
	if r := s.call("POST", "/v1/passports/lookup", "", "application/json", mustJSON(t, map[string]string{"id_number": person.IDNumber, "full_name": person.FullName, "dob": person.DOB})); r.status != http.StatusNotFound {
		t.Errorf("lookup of a revoked certificate: %d, want 404", r.status)
	}
	step("ops revoke; verify and lookup reflect it")

	// Renewal by direct invoke with a window covering every certificate: the second
	// half's certificates are re-signed in place (same UVCI, new HC1), the revoked one is not.
	later := pop.registry[second.eligible()[0]]
	before := s.lookup(t, later)
	sum := s.renewAll(t, "400d", "e2e")
	if sum.Counts.Renewed < int64(len(second.eligible())) || sum.FinishedAt.IsZero() {
		t.Fatalf("renewal run: %+v, want at least %d renewed and the run finished", sum, len(second.eligible()))
	}
	renewed := s.lookup(t, later)
	if renewed.UVCI != before.UVCI || renewed.HC1 == before.HC1 || renewed.ExpiresAt.Before(before.ExpiresAt) {
		t.Errorf("renewed certificate: uvci %s -> %s, expires %s -> %s, HC1 changed %v", before.UVCI, renewed.UVCI, before.ExpiresAt, renewed.ExpiresAt, renewed.HC1 != before.HC1)
	}
	s.json("POST", "/v1/verify", "", map[string]string{"hc1": renewed.HC1}, &verdict, http.StatusOK)
	if !verdict.Valid {
		t.Errorf("the renewed certificate does not verify: %s", verdict.Reason)
	}
	step(fmt.Sprintf("renewal run by direct invoke: %d renewed, %d skipped as revoked", sum.Counts.Renewed, sum.Counts.SkippedRevoked))

	// A message central signing rejects goes to the dead-letter queue after the queue's
	// receives (partial batch failure, redrive policy), and ops redrives it.
	s.checkDeadLetters(t)
	step("poison message dead-lettered and redriven by ops")
}

// checkCertificate verifies an issued certificate every way a verifier could.
func (s *stack) checkCertificate(t *testing.T, c lookupAnswer, person match.Person) {
	t.Helper()
	if c.Fields.FullName == "" || c.Fields.CertificateID != c.UVCI || !strings.HasPrefix(c.HC1, "HC1:") {
		t.Fatalf("lookup answer: %+v", c)
	}
	var verdict struct {
		Valid  bool   `json:"valid"`
		Reason string `json:"reason"`
	}
	s.json("POST", "/v1/verify", "", map[string]string{"hc1": c.HC1}, &verdict, http.StatusOK)
	if !verdict.Valid {
		t.Fatalf("POST /v1/verify: not valid: %s", verdict.Reason)
	}

	// Independently: the published trust list, the DSC over the KMS key, the CSCA chain.
	var entries []struct {
		KID     string `json:"kid"`
		RawData string `json:"rawData"`
	}
	s.json("GET", "/v1/trustlist", "", nil, &entries, http.StatusOK)
	list, err := trust.NewList()
	if err != nil {
		t.Fatal(err)
	}
	var dsc *x509.Certificate
	for _, e := range entries {
		der, err := base64.StdEncoding.DecodeString(e.RawData)
		if err != nil {
			t.Fatal(err)
		}
		if dsc, err = x509.ParseCertificate(der); err != nil {
			t.Fatal(err)
		}
		if got := base64.StdEncoding.EncodeToString(trust.KID(der)); got != e.KID {
			t.Errorf("trust list kid %s, computed %s", e.KID, got)
		}
		if err := list.Add("", dsc); err != nil {
			t.Fatal(err)
		}
	}
	res, err := (&hcert.Verifier{Trust: list}).Verify(context.Background(), c.HC1)
	if err != nil {
		t.Fatalf("HC1 does not verify against the published trust list: %v", err)
	}
	out, err := kms.NewFromConfig(s.cfg).GetPublicKey(context.Background(), &kms.GetPublicKeyInput{KeyId: aws.String(s.outputs["DscKeyArn"])})
	if err != nil {
		t.Fatal(err)
	}
	kmsPub, err := x509.ParsePKIXPublicKey(out.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if !res.DSC.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(kmsPub) {
		t.Errorf("the DSC that verified is not over the stack's KMS DSC key")
	}
	if path := os.Getenv(EnvCSCA); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(b)
		if block == nil {
			t.Fatalf("%s: no PEM", path)
		}
		csca, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if err := trust.CheckIssuedBy(res.DSC, csca); err != nil {
			t.Errorf("the DSC does not chain to the CSCA: %v", err)
		}
	}
	if got := res.ExpiresAt.Sub(res.IssuedAt); got < 364*24*time.Hour || got > 367*24*time.Hour {
		t.Errorf("certificate valid %s, want 12 months", got)
	}

	// The QR image carries exactly the HC1.
	png := s.call("GET", c.QRPNG, "", "", nil)
	if png.status != http.StatusOK || png.header.Get("Content-Type") != "image/png" {
		t.Fatalf("GET %s: %d %s", c.QRPNG, png.status, png.header.Get("Content-Type"))
	}
	text, err := qrscan.DecodeBytes(png.body)
	if err != nil || text != c.HC1 {
		t.Errorf("QR decodes to %.30q (%v), want the HC1", text, err)
	}
}

// checkKeyPolicies checks least privilege on the keys, signing with the functions' own
// roles: facility signing may sign with this stack's facility keys and not with the DSC
// key; central signing with the DSC key and not with a facility key. It needs to assume the
// roles, which their trust policies refuse on AWS (Lambda only): there it is skipped.
func (s *stack) checkKeyPolicies(t *testing.T, facilityID string) {
	t.Helper()
	ctx := context.Background()
	f, err := s.sys.Store.GetFacility(ctx, facilityID)
	if err != nil {
		t.Fatal(err)
	}
	fn := lambda.NewFromConfig(s.cfg)
	roleOf := func(output string) string {
		out, err := fn.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(s.outputs[output])})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.Role)
	}
	canSign := func(role, key string) (bool, error) {
		creds, err := sts.NewFromConfig(s.cfg).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(role), RoleSessionName: aws.String("vaxpass-e2e")})
		if err != nil {
			return false, err
		}
		cfg := s.cfg.Copy()
		cfg.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(creds.Credentials.AccessKeyId), aws.ToString(creds.Credentials.SecretAccessKey), aws.ToString(creds.Credentials.SessionToken))
		_, err = kms.NewFromConfig(cfg).Sign(ctx, &kms.SignInput{KeyId: aws.String(key), Message: []byte("least privilege"), MessageType: kmstypes.MessageTypeRaw, SigningAlgorithm: kmstypes.SigningAlgorithmSpecEcdsaSha256})
		var denied interface{ ErrorCode() string }
		if errors.As(err, &denied) && denied.ErrorCode() == "AccessDeniedException" {
			return false, nil
		}
		return err == nil, err
	}
	for _, c := range []struct {
		function, key, keyName string
		want                   bool
	}{
		{"FacilitySigningFunction", f.KeyID, "its facility key", true},
		{"FacilitySigningFunction", s.outputs["DscKeyArn"], "the DSC key", false},
		{"CentralSigningFunction", s.outputs["DscKeyArn"], "the DSC key", true},
		{"CentralSigningFunction", f.KeyID, "a facility key", false},
	} {
		got, err := canSign(roleOf(c.function), c.key)
		if err != nil {
			var code interface{ ErrorCode() string }
			if errors.As(err, &code) && code.ErrorCode() == "AccessDenied" {
				t.Logf("key policy check skipped: cannot assume the functions' roles here (%v)", err)
				return
			}
			t.Fatalf("%s signing with %s: %v", c.function, c.keyName, err)
		}
		if got != c.want {
			t.Errorf("%s may sign with %s: %v, want %v", c.function, c.keyName, got, c.want)
		}
	}
}

// checkDeadLetters sends a central signing message whose facility signature cannot
// verify: central signing reports it failed, the queue redelivers it until the redrive
// policy moves it to the dead-letter queue, and ops' redrive moves it back.
func (s *stack) checkDeadLetters(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	client := sqs.NewFromConfig(s.cfg)
	dlq := s.outputs["CentralDeadLetterQueueUrl"]
	depth := func() int {
		out, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(dlq), AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages}})
		if err != nil {
			t.Fatal(err)
		}
		var n int
		fmt.Sscan(out.Attributes[string(sqstypes.QueueAttributeNameApproximateNumberOfMessages)], &n)
		return n
	}
	before := depth()
	poison := `{"signature":{"person_id":"001099000001","facility_id":"e2e-no-such-facility","payload":"AA==","signature":"AA==","signed_at":"2021-09-01T00:00:00Z"}}`
	if _, err := client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(s.outputs["CentralQueueUrl"]), MessageBody: aws.String(poison)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "poison message in the dead-letter queue", func() (bool, string) {
		n := depth()
		return n > before, fmt.Sprintf("%d messages", n)
	})
	dead, err := s.sys.Sys.DeadLetters()
	if err != nil {
		t.Fatalf("dead letters: %v", err)
	}
	moved, _, err := dead.Redrive(ctx, "central", nil)
	if err != nil || moved < 1 {
		t.Fatalf("redrive moved %d messages (%v), want at least 1", moved, err)
	}
	// It fails again and comes back: the redrive put it on the central queue for real.
	eventually(t, "redriven poison message back in the dead-letter queue", func() (bool, string) {
		n := depth()
		return n >= 1, fmt.Sprintf("%d messages", n)
	})
}

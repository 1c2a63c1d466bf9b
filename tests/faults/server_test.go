package faults

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/testkit/cli"
	"github.com/vaxpass/vaxpass/shared/testkit/server"
)

// setUp loads the registry and adds the run's facilities; it returns their API keys.
func setUp(t *testing.T, data string, pop *population) []string {
	t.Helper()
	cli.Must(t, "registry", "load", pop.registry, "--data", data)
	keys := make([]string, facilityCount)
	for i := range keys {
		keys[i] = strings.TrimSpace(cli.Must(t, "facility", "add", "--id", facilityID(i), "--name", fmt.Sprintf("Fault site %d", i), "--data", data).Stdout)
	}
	return keys
}

// faultServer is the `vaxpass serve` of a fault run, with the calls its facilities make.
type faultServer struct {
	*server.Process
	t *testing.T
}

// startServer starts `vaxpass serve` on a free loopback port and waits until it listens.
// The automatic facility signing is off: the test asks for signatures itself.
func startServer(t *testing.T, data string) *faultServer {
	t.Helper()
	return &faultServer{server.Spawn(t, data, "--sign-every", "0"), t}
}

// request sends one request as the facility holding key; a transport error is returned
// (the server may have been killed), never fatal.
func (s *faultServer) request(method, path, key string, body []byte) (int, []byte, error) {
	contentType := ""
	if body != nil {
		contentType = "application/json"
	}
	r, err := s.Client(key).Send(method, path, body, contentType)
	return r.Status, r.Body, err
}

// uploadResult and uploadReport are the contract's answer to POST /v1/doses, declared
// here: the test reads what the API says.
type uploadResult struct {
	SourceID string `json:"source_id"`
	Status   string `json:"status"`
}

type uploadReport struct {
	Accepted   int            `json:"accepted"`
	Duplicates int            `json:"duplicates"`
	Rejected   int            `json:"rejected"`
	Results    []uploadResult `json:"results"`
}

// upload posts a batch and decodes the answer; ok is false when no 200 answer came
// (the connection broke, or the server answered an error).
func (s *faultServer) upload(pop *population, b batch, key string) (rep uploadReport, status int, err error) {
	status, body, err := s.request("POST", "/v1/doses", key, pop.body(b))
	if err != nil {
		return rep, status, err
	}
	if status != http.StatusOK {
		return rep, status, fmt.Errorf("POST /v1/doses: status %d: %.300s", status, body)
	}
	if err := json.Unmarshal(body, &rep); err != nil {
		return rep, status, fmt.Errorf("POST /v1/doses: decode answer: %w", err)
	}
	if len(rep.Results) != len(b.records) {
		return rep, status, fmt.Errorf("POST /v1/doses: %d results for %d records", len(rep.Results), len(b.records))
	}
	return rep, status, nil
}

// pendingCount reads how many of a facility's records wait for the matcher (the first
// worklist page is enough to tell "none" from "some").
func (s *faultServer) pendingCount(key string) (int, error) {
	status, body, err := s.request("GET", "/v1/worklist?status=PENDING", key, nil)
	if err != nil {
		return 0, err
	}
	if status != http.StatusOK {
		return 0, fmt.Errorf("GET /v1/worklist: status %d: %.300s", status, body)
	}
	var page struct {
		Records []json.RawMessage `json:"records"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return 0, err
	}
	return len(page.Records), nil
}

// waitMatched polls until no facility has a record waiting for the matcher.
func (s *faultServer) waitMatched(keys []string, timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		total := 0
		for _, k := range keys {
			n, err := s.pendingCount(k)
			if err != nil {
				s.t.Fatalf("wait for the matcher: %v", err)
			}
			total += n
		}
		if total == 0 {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%d records still PENDING after %s", total, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// signAll asks every facility to sign (POST /v1/signatures) and returns how many people
// each signed.
func (s *faultServer) signAll(keys []string) []int {
	s.t.Helper()
	out := make([]int, len(keys))
	for i, k := range keys {
		status, body, err := s.request("POST", "/v1/signatures", k, nil)
		if err != nil || status != http.StatusOK && status != http.StatusAccepted {
			s.t.Fatalf("POST /v1/signatures as %s: status %d, %v: %.300s", facilityID(i), status, err, body)
		}
		var res server.Signed
		if err := json.Unmarshal(body, &res); err != nil {
			s.t.Fatal(err)
		}
		if status == http.StatusAccepted { // a run goes on in the background: follow it
			res = server.NewClient(s.URL, k).FollowRun(s.t, res, 5*time.Minute)
		}
		out[i] = res.Signed
	}
	return out
}

// doseCertificate reads GET /v1/doses/{source_id} and tells whether it shows a certificate.
func (s *faultServer) doseCertificate(key, sourceID string) bool {
	status, body, err := s.request("GET", "/v1/doses/"+url.PathEscape(sourceID), key, nil)
	if err != nil || status != http.StatusOK {
		return false
	}
	var v struct {
		Certificate *struct {
			UVCI string `json:"uvci"`
		} `json:"certificate"`
	}
	return json.Unmarshal(body, &v) == nil && v.Certificate != nil
}

// ledger is what the client knows from the server's answers.
type ledger struct {
	sent     map[doseKey]bool
	acked    map[doseKey]bool // answered accepted or duplicate
	accepted map[doseKey]int  // times answered accepted: more than once is a duplicate insert
	rejected map[doseKey]bool
}

func newLedger() *ledger {
	return &ledger{sent: map[doseKey]bool{}, acked: map[doseKey]bool{}, accepted: map[doseKey]int{}, rejected: map[doseKey]bool{}}
}

func (l *ledger) markSent(pop *population, b batch) {
	for _, i := range b.records {
		l.sent[pop.key(i)] = true
	}
}

// record notes an upload answer; it returns the answers that break the contract.
func (l *ledger) record(pop *population, b batch, rep uploadReport) []string {
	var bad []string
	for j, r := range rep.Results {
		k := pop.key(b.records[j])
		if r.SourceID != k.SourceID {
			bad = append(bad, fmt.Sprintf("result %d names %s, the record is %s", j, r.SourceID, k.SourceID))
			continue
		}
		switch r.Status {
		case "accepted":
			l.accepted[k]++
			l.acked[k] = true
			if l.accepted[k] > 1 {
				bad = append(bad, fmt.Sprintf("%s accepted %d times: stored twice", k, l.accepted[k]))
			}
		case "duplicate":
			l.acked[k] = true
		case "rejected":
			l.rejected[k] = true
		default:
			bad = append(bad, fmt.Sprintf("%s: status %q", k, r.Status))
		}
	}
	return bad
}

package awstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"

	"github.com/vaxpass/vaxpass/shared/edge/emf"
)

// emfLines returns the lines a Recorder of function fn writes for the given counts.
func emfLines(t *testing.T, fn string, ts time.Time, sign, throttle, issued int64) []string {
	t.Helper()
	r := emf.New(emf.Namespace, map[string]string{emf.DimFunction: fn})
	r.With(emf.DimPurpose, emf.PurposeCentral).Count(emf.KMSSign, sign)
	r.With(emf.DimPurpose, emf.PurposeCentral).Count(emf.KMSThrottle, throttle)
	r.Count(emf.CertificatesIssued, issued)
	var b bytes.Buffer
	if err := r.Flush(&b); err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(b.String()), "\n")
}

// fakeLogs serves log groups of events (sorted by time) the way AWS pages them
// (tokens: pages of at most pageSize with a nextToken) or the way ministack does (one
// page of at most Limit events, no token).
type fakeLogs struct {
	groups   map[string][]types.FilteredLogEvent
	tokens   bool
	pageSize int
	calls    int
}

func (f *fakeLogs) DescribeLogGroups(ctx context.Context, in *cloudwatchlogs.DescribeLogGroupsInput, _ ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.DescribeLogGroupsOutput, error) {
	var names []string
	for n := range f.groups {
		if strings.HasPrefix(n, aws.ToString(in.LogGroupNamePrefix)) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	start, _ := strconv.Atoi(aws.ToString(in.NextToken))
	out := &cloudwatchlogs.DescribeLogGroupsOutput{}
	for _, n := range names[start:min(start+1, len(names))] { // one group per page: paging is exercised
		out.LogGroups = append(out.LogGroups, types.LogGroup{LogGroupName: aws.String(n)})
	}
	if start+1 < len(names) {
		out.NextToken = aws.String(strconv.Itoa(start + 1))
	}
	return out, nil
}

func (f *fakeLogs) FilterLogEvents(ctx context.Context, in *cloudwatchlogs.FilterLogEventsInput, _ ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.FilterLogEventsOutput, error) {
	f.calls++
	var events []types.FilteredLogEvent
	for _, e := range f.groups[aws.ToString(in.LogGroupName)] {
		if aws.ToInt64(e.Timestamp) >= aws.ToInt64(in.StartTime) {
			events = append(events, e)
		}
	}
	limit := int(aws.ToInt32(in.Limit))
	if !f.tokens {
		return &cloudwatchlogs.FilterLogEventsOutput{Events: events[:min(limit, len(events))]}, nil
	}
	start, _ := strconv.Atoi(aws.ToString(in.NextToken))
	end := min(start+min(limit, f.pageSize), len(events))
	out := &cloudwatchlogs.FilterLogEventsOutput{Events: events[start:end]}
	if end < len(events) {
		out.NextToken = aws.String(strconv.Itoa(end))
	}
	return out, nil
}

// fakeGroup is n events at ts0 + i/perMilli ms: every tenth an EMF document of one
// signature and one certificate, the others slog lines.
func fakeGroup(t *testing.T, fn string, ts0 int64, n, perMilli int) []types.FilteredLogEvent {
	doc := emfLines(t, fn, time.UnixMilli(ts0), 1, 0, 1)
	if len(doc) != 1 {
		t.Fatalf("%d lines", len(doc))
	}
	events := make([]types.FilteredLogEvent, n)
	for i := range events {
		msg := `{"level":"INFO","msg":"signed"}`
		if i%10 == 0 {
			msg = doc[0]
		}
		events[i] = types.FilteredLogEvent{Timestamp: aws.Int64(ts0 + int64(i/perMilli)), Message: aws.String(msg)}
	}
	return events
}

func TestEMFTotalsPaging(t *testing.T) {
	const ts0 = 1_740_000_000_000
	for _, tc := range []struct {
		name     string
		tokens   bool
		perMilli int
		wantErr  bool
	}{
		{"AWS pages with tokens", true, 7, false},
		// 23,000 events, 700 per millisecond: the 10,000-event pages end in the middle
		// of a millisecond, which is read again from its start and skipped.
		{"ministack truncates, continued by time", false, 700, false},
		{"ministack, one millisecond over a page", false, 23000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeLogs{tokens: tc.tokens, pageSize: 3000, groups: map[string][]types.FilteredLogEvent{
				"/aws/lambda/vp-central": fakeGroup(t, "vp-central", ts0, 23000, tc.perMilli),
				"/aws/lambda/vp-renewal": fakeGroup(t, "vp-renewal", ts0, 50, tc.perMilli),
				"/aws/lambda/other":      fakeGroup(t, "other", ts0, 50, tc.perMilli),
			}}
			got, err := EMFTotals(t.Context(), f, "/aws/lambda/vp-", time.UnixMilli(ts0))
			if tc.wantErr {
				if err == nil {
					t.Fatalf("no error, totals %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]float64{
				emf.KMSSign: 2305, "KMSSign/Purpose=central": 2305, "KMSSign/Function=vp-central": 2300, "KMSSign/Function=vp-renewal": 5,
				emf.CertificatesIssued: 2305, "CertificatesIssued/Function=vp-central": 2300, "CertificatesIssued/Function=vp-renewal": 5,
			}
			// KMSThrottle is counted 0: present, adding nothing.
			want[emf.KMSThrottle], want["KMSThrottle/Purpose=central"] = 0, 0
			want["KMSThrottle/Function=vp-central"], want["KMSThrottle/Function=vp-renewal"] = 0, 0
			if !reflect.DeepEqual(got, want) {
				t.Errorf("totals\n got %v\nwant %v", got, want)
			}
		})
	}
}

func TestEMFTotalsSince(t *testing.T) {
	const ts0 = 1_740_000_000_000
	f := &fakeLogs{groups: map[string][]types.FilteredLogEvent{"/aws/lambda/vp-c": fakeGroup(t, "vp-c", ts0, 100, 1)}}
	got, err := EMFTotals(t.Context(), f, "/aws/lambda/vp-", time.UnixMilli(ts0+50))
	if err != nil {
		t.Fatal(err)
	}
	if got[emf.KMSSign] != 5 { // events 50, 60, ..., 90
		t.Errorf("KMSSign %v, want 5 (events from since on)", got[emf.KMSSign])
	}
	if _, err := EMFTotals(t.Context(), f, "", time.Time{}); err == nil {
		t.Error("no error without a prefix")
	}
}

// TestEMFTotalsOnEmulator writes log events with PutLogEvents -- EMF documents as a
// Recorder writes them, slog and platform lines, an event before since -- and reads the
// totals back; 12,000 events in one group go past one FilterLogEvents page.
func TestEMFTotalsOnEmulator(t *testing.T) {
	cfg := Config(t)
	client := cloudwatchlogs.NewFromConfig(cfg)
	prefix := "/vaxpass-test/" + UniqueName(t, "logs") + "/"
	ctx := t.Context()
	now := time.Now().Truncate(time.Millisecond)
	since := now.Add(-time.Minute)

	put := func(group, stream string, events []types.InputLogEvent) {
		t.Helper()
		for len(events) > 0 { // PutLogEvents: at most 10,000 events and 1 MB per call
			n := min(len(events), 4000)
			_, err := client.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String(group), LogStreamName: aws.String(stream), LogEvents: events[:n]})
			if err != nil {
				t.Fatalf("put log events: %v", err)
			}
			events = events[n:]
		}
	}
	newGroup := func(name string) string {
		t.Helper()
		group := prefix + name
		if _, err := client.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(group)}); err != nil {
			t.Fatalf("create log group: %v", err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
			defer cancel()
			if _, err := client.DeleteLogGroup(ctx, &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: aws.String(group)}); err != nil && !isNotFound(err) {
				t.Errorf("delete log group %s: %v", group, err)
			}
		})
		for _, s := range []string{"a", "b"} {
			if _, err := client.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: aws.String(group), LogStreamName: aws.String(s)}); err != nil {
				t.Fatalf("create log stream: %v", err)
			}
		}
		return group
	}
	event := func(ts time.Time, msg string) types.InputLogEvent {
		return types.InputLogEvent{Timestamp: aws.Int64(ts.UnixMilli()), Message: aws.String(msg)}
	}

	// Central: 12,000 events over 60 ms in stream a (200 per ms), every 40th an EMF
	// document (2 signatures, 1 throttle, 2 certificates); stream b has one more.
	central := newGroup("central")
	var a []types.InputLogEvent
	a = append(a, event(since.Add(-time.Minute), emfLines(t, "central", since, 1000, 0, 1000)[0])) // before since
	docs := 0
	for i := range 12000 {
		ts := now.Add(-30*time.Second + time.Duration(i/200)*time.Millisecond)
		switch {
		case i%40 == 0:
			a = append(a, event(ts, emfLines(t, "central", ts, 2, 1, 2)[0]))
			docs++
		case i%40 == 1:
			a = append(a, event(ts, "START RequestId: 5f2d Version: $LATEST"))
		default:
			a = append(a, event(ts, `{"time":"2025-03-01T08:30:00Z","level":"INFO","msg":"batch signed","n":10}`))
		}
	}
	put(central, "a", a)
	put(central, "b", []types.InputLogEvent{event(now, emfLines(t, "central", now, 3, 0, 3)[0])})
	// Renewal: two purposes in one flush: two documents.
	renewal := newGroup("renewal")
	r := emf.New(emf.Namespace, map[string]string{emf.DimFunction: "renewal"})
	r.With(emf.DimPurpose, emf.PurposeRenewal).Count(emf.KMSSign, 7)
	r.With(emf.DimPurpose, emf.PurposeFacility).Count(emf.KMSSign, 1)
	r.Count(emf.CertificatesRenewed, 7)
	var b bytes.Buffer
	if err := r.Flush(&b); err != nil {
		t.Fatal(err)
	}
	var ev []types.InputLogEvent
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		ev = append(ev, event(now, line))
	}
	if len(ev) != 2 {
		t.Fatalf("%d renewal documents, want 2", len(ev))
	}
	put(renewal, "a", ev)

	counted := &countingLogs{LogsAPI: client}
	got, err := EMFTotals(ctx, counted, prefix, since)
	if err != nil {
		t.Fatal(err)
	}
	if counted.filters < 3 { // central's 12,000 events take two pages at least, renewal's one
		t.Errorf("%d FilterLogEvents calls: central's 12,000 events were read in one page", counted.filters)
	}
	signs := float64(2*docs + 3)
	for key, want := range map[string]float64{
		emf.KMSSign:                            signs + 8,
		"KMSSign/Purpose=central":              signs,
		"KMSSign/Purpose=renewal":              7,
		"KMSSign/Purpose=facility":             1,
		"KMSSign/Function=central":             signs,
		emf.KMSThrottle:                        float64(docs),
		emf.CertificatesIssued:                 signs,
		emf.CertificatesRenewed:                7,
		"CertificatesRenewed/Function=renewal": 7,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v", key, got[key], want)
		}
	}
	t.Logf("%d events, %d EMF documents: %v", len(a)+3, docs+3, got)

	// Another prefix sees none of it.
	other, err := EMFTotals(ctx, client, prefix+"nothing-here/", since)
	if err != nil || len(other) != 0 {
		t.Errorf("totals under an empty prefix: %v, %v", other, err)
	}
}

func TestEMFTotalsError(t *testing.T) {
	f := &failingLogs{}
	if _, err := EMFTotals(t.Context(), f, "/aws/lambda/", time.Time{}); !errors.Is(err, errLogs) {
		t.Errorf("error %v, want the client's", err)
	}
}

var errLogs = fmt.Errorf("logs unavailable")

type failingLogs struct{ fakeLogs }

func (f *failingLogs) DescribeLogGroups(context.Context, *cloudwatchlogs.DescribeLogGroupsInput, ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.DescribeLogGroupsOutput, error) {
	return nil, errLogs
}

// countingLogs counts FilterLogEvents calls.
type countingLogs struct {
	LogsAPI
	filters int
}

func (c *countingLogs) FilterLogEvents(ctx context.Context, in *cloudwatchlogs.FilterLogEventsInput, opts ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.FilterLogEventsOutput, error) {
	c.filters++
	return c.LogsAPI.FilterLogEvents(ctx, in, opts...)
}

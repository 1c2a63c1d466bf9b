package ops

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/edge/centralqueue"
	"github.com/vaxpass/vaxpass/shared/store/embedded/queue"
	"github.com/vaxpass/vaxpass/shared/testkit/cli"
	"github.com/vaxpass/vaxpass/shared/vaxpass"
	"github.com/vaxpass/vaxpass/shared/wire/local"
)

// TestDeadLettersListAndRedrive: a facility signature central signing cannot verify
// ends in the dead letters after its retries; `vaxpass dlq list` shows it without its
// content, `dlq redrive` gives it back to central signing (where it fails again, and is
// dead again), and the matcher's dead letters list empty.
func TestDeadLettersListAndRedrive(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	data := filepath.Join(t.TempDir(), "data")
	ctx := context.Background()
	sys, err := local.OpenLocal(local.Options{DataDir: data, Log: quietLog(), MaxReceiveCount: 2})
	if err != nil {
		t.Fatal(err)
	}
	body, err := centralqueue.Encode(vaxpass.FacilitySignature{PersonID: "001090012345", FacilityID: "F-unknown",
		Payload: []byte("not cbor"), Signature: make([]byte, 64), SignedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sys.Queue.Send(ctx, body, queue.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := sys.DrainCentralQueue(ctx); err != nil {
		t.Fatal(err)
	}
	sys.Close()

	out := cli.Must(t, "dlq", "list", "--data", data).Stdout
	var letters []local.DeadLetter
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var d local.DeadLetter
		if err := dec.Decode(&d); err != nil {
			t.Fatal(err)
		}
		letters = append(letters, d)
	}
	if len(letters) != 1 || letters[0].FacilityID != "F-unknown" || letters[0].Queue != "central" || letters[0].ReceiveCount < 2 {
		t.Fatalf("dead letters: %+v", letters)
	}
	if strings.Contains(out, "001090012345") || strings.Contains(out, "payload") {
		t.Errorf("dlq list shows the message's content: %s", out)
	}

	errOut := cli.Must(t, "dlq", "redrive", "--no-drain", "--data", data).Stderr
	if !strings.Contains(errOut, "1 messages back") {
		t.Errorf("redrive: %s", errOut)
	}
	if out := cli.Must(t, "dlq", "list", "--data", data).Stdout; strings.TrimSpace(out) != "" {
		t.Errorf("dead letters after the redrive: %s", out)
	}
	// Redriven and processed: it fails again and is a dead letter again (exit 1 says so).
	r := cli.Run(t, "dlq", "redrive", letters[0].ID, "--data", data)
	if cmdOut := r.Stdout + r.Stderr; r.Code == 0 || !strings.Contains(cmdOut, "no such message") && !strings.Contains(cmdOut, "not found") {
		t.Errorf("redrive of an ID that is no dead letter any more: exit %d\n%s", r.Code, cmdOut)
	}
	sys, err = local.OpenLocal(local.Options{DataDir: data, Log: quietLog(), MaxReceiveCount: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := sys.DrainCentralQueue(ctx); err != nil {
		t.Fatal(err)
	}
	sys.Close()
	if out := cli.Must(t, "dlq", "list", "--data", data).Stdout; strings.Count(out, "F-unknown") != 1 {
		t.Errorf("after the redriven message failed again: %s", out)
	}
	if out := cli.Must(t, "dlq", "list", "--queue", "matcher", "--data", data).Stdout; strings.TrimSpace(out) != "" {
		t.Errorf("matcher dead letters: %s", out)
	}
}

package main

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vaxpass/vaxpass/shared/domain/uvci"
	"github.com/vaxpass/vaxpass/shared/store/awsstack"
)

// operatorCommands are the commands the contract lists for --backend aws, with arguments
// that pass their own checks; with(extra) puts extra flags after the command's words.
func operatorCommands(t *testing.T) []operatorCommand {
	t.Helper()
	csv := filepath.Join(t.TempDir(), "registry.csv")
	if err := os.WriteFile(csv, []byte("id_number,full_name,dob,gender\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ci, err := uvci.New(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return []operatorCommand{
		{[]string{"facility", "add"}, []string{"--id", "F1", "--name", "Trạm Y tế"}},
		{[]string{"registry", "load"}, []string{csv}},
		{[]string{"ops", "key"}, []string{"--actor", "anna"}},
		{[]string{"renew"}, []string{"--within", "30d"}},
		{[]string{"revoke"}, []string{ci, "--reason", "test"}},
		{[]string{"reprocess"}, []string{"--stage", "match", "--status", "NOT_FOUND"}},
		{[]string{"reprocess"}, []string{"--stage", "match", "--dry-run"}},
		{[]string{"reprocess"}, []string{"--run-id", "rp-20240101T000000Z-0badcafe"}},
		{[]string{"reprocess", "list"}, nil},
		{[]string{"dlq", "list"}, nil},
		{[]string{"dlq", "redrive"}, []string{"--queue", "matcher"}},
		{[]string{"audit"}, []string{"--action", "revocation"}},
		{[]string{"verify"}, []string{"HC1:NCF"}},
	}
}

type operatorCommand struct{ words, rest []string }

func (c operatorCommand) with(extra ...string) []string {
	return append(append(append([]string{}, c.words...), extra...), c.rest...)
}

// Every operator command takes --backend aws: without a stack name it asks for one
// (a usage error), never answers that the backend is unsupported.
func TestOperatorCommandsTakeBackendAWS(t *testing.T) {
	t.Setenv(awsstack.EnvStack, "")
	t.Setenv("USER", "anna")
	for _, c := range operatorCommands(t) {
		args := c.with("--backend", "aws")
		code, stdout, stderr := runOperatorCmd(t, args...)
		if code != 2 || !strings.Contains(stderr, "--stack NAME or set "+awsstack.EnvStack) || strings.Contains(stderr, "not supported") || stdout != "" {
			t.Errorf("%v --backend aws without a stack: exit %d, stderr %q; want 2 asking for --stack", args, code, stderr)
		}
	}
	for _, args := range [][]string{{"serve"}, {"bench", "--people", "10"}} {
		code, _, stderr := runOperatorCmd(t, append(args, "--backend", "aws", "--stack", "s")...)
		if code != 2 || !strings.Contains(strings.ToLower(stderr), "aws") {
			t.Errorf("%v --backend aws: exit %d, %q; want the embedded-only usage error", args, code, stderr)
		}
	}
}

// With a stack name each command goes to the stack: where nothing answers, it fails (1)
// naming the stack, after its own checks passed.
func TestOperatorCommandsReachForTheStack(t *testing.T) {
	t.Setenv(awsstack.EnvStack, "vaxpass-test")
	t.Setenv("USER", "anna")
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	for _, c := range operatorCommands(t) {
		args := c.with("--backend", "aws")
		code, stdout, stderr := runOperatorCmd(t, args...)
		if code != 1 || !strings.Contains(stderr, `"vaxpass-test"`) || stdout != "" {
			t.Errorf("%v --backend aws (stack from $%s, nothing answering): exit %d, stderr %q; want 1 naming the stack", args, awsstack.EnvStack, code, stderr)
		}
	}
}

func TestBackendFlagValues(t *testing.T) {
	for _, c := range operatorCommands(t) {
		args := c.with("--backend", "cloud")
		code, _, stderr := runOperatorCmd(t, args...)
		if code != 2 || !strings.Contains(stderr, "--backend must be embedded or aws") {
			t.Errorf("%v --backend cloud: exit %d, %q", args, code, stderr)
		}
	}
}

func TestCLIActor(t *testing.T) {
	t.Setenv("USER", "Anna")
	if got, err := cliActor(""); err != nil || got != "cli:anna" {
		t.Errorf("actor from $USER Anna: %q %v, want cli:anna", got, err)
	}
	if got, err := cliActor("ops.bao"); err != nil || got != "cli:ops.bao" {
		t.Errorf("--actor ops.bao: %q %v", got, err)
	}
	for _, bad := range []string{"Anna", "an na", "-x", "cli:anna", strings.Repeat("a", 65), "ánh"} {
		if got, err := cliActor(bad); err == nil {
			t.Errorf("--actor %q accepted as %q", bad, got)
		}
	}
	t.Setenv("USER", "Nguyen Van An")
	if _, err := cliActor(""); err == nil || !strings.Contains(err.Error(), "pass --actor") {
		t.Errorf("an invalid $USER: %v, want a request for --actor", err)
	}
	if got, err := cliActor("an"); err != nil || got != "cli:an" {
		t.Errorf("--actor overrides an invalid $USER: %q %v", got, err)
	}
}

func TestActorFlagIsValidated(t *testing.T) {
	data := t.TempDir()
	ci, err := uvci.New(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"revoke", ci, "--reason", "test"},
		{"renew"},
		{"reprocess", "--stage", "match"},
		{"dlq", "redrive"},
		{"facility", "add", "--id", "F1", "--name", "x"},
	} {
		code, _, stderr := runOperatorCmd(t, append(args, "--actor", "Bad Name", "--data", data)...)
		if code != 2 || !strings.Contains(stderr, "--actor") {
			t.Errorf("%v --actor 'Bad Name': exit %d, %q; want a usage error", args, code, stderr)
		}
	}
}

func TestBackendSpecificFlags(t *testing.T) {
	t.Setenv("USER", "anna")
	data := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"reprocess", "--stage", "match", "--poll", "1s", "--data", data}, "--poll is for --backend aws"},
		{[]string{"reprocess", "--run-id", "rp-20240101T000000Z-0badcafe", "--requeue", "--data", data}, "--requeue is for --backend aws"},
		{[]string{"reprocess", "--stage", "match", "--batch", "10", "--backend", "aws", "--stack", "s"}, "--batch is the embedded backend's"},
		{[]string{"reprocess", "--stage", "match", "--requeue", "--backend", "aws", "--stack", "s"}, "--requeue needs --run-id"},
		{[]string{"reprocess", "--stage", "match", "--poll", "1ms", "--backend", "aws", "--stack", "s"}, "--poll must be"},
		{[]string{"renew", "--rate", "5", "--backend", "aws", "--stack", "s"}, "KmsSignsPerSecond"},
		{[]string{"registry", "load", "x.csv", "--checkpoint-dir", data, "--data", data}, "--checkpoint-dir is for --backend aws"},
		{[]string{"registry", "load", "x.csv", "--writers", "0", "--backend", "aws", "--stack", "s"}, "--writers must be"},
		{[]string{"registry", "load", "x.csv", "--writers", "4", "--data", data}, "--writers is for --backend aws"},
		{[]string{"registry", "load", "x.csv", "--chunk", "10", "--backend", "aws", "--stack", "s"}, "--chunk must be"},
		{[]string{"registry", "load", "x.csv", "--max-rejected", "-2", "--backend", "aws", "--stack", "s"}, "--max-rejected must be"},
	} {
		code, _, stderr := runOperatorCmd(t, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}

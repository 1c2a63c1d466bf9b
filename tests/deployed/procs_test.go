package deployed

import (
	"bytes"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
)

// emulatorEndpoint is AWS_ENDPOINT_URL when it names this machine (an emulator whose
// functions run as host processes), else "".
func emulatorEndpoint() string {
	ep := os.Getenv("AWS_ENDPOINT_URL")
	u, err := url.Parse(ep)
	if err != nil || runtime.GOOS != "linux" {
		return ""
	}
	switch u.Hostname() {
	case "127.0.0.1", "localhost", "::1":
		return ep
	}
	return ""
}

// functionProcesses finds the processes running the function named fn for the emulator
// at endpoint: ministack starts a provided.al2023 function's bootstrap as a host process
// with the function's name in AWS_LAMBDA_FUNCTION_NAME and its own endpoint in
// AWS_ENDPOINT_URL (so a function of the same name under another emulator on the same
// machine is left alone).
func functionProcesses(t *testing.T, endpoint, fn string) []int {
	t.Helper()
	want, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue // gone, or not ours to read
		}
		var name, ep string
		for _, kv := range bytes.Split(env, []byte{0}) {
			k, v, _ := bytes.Cut(kv, []byte("="))
			switch string(k) {
			case "AWS_LAMBDA_FUNCTION_NAME":
				name = string(v)
			case "AWS_ENDPOINT_URL":
				ep = string(v)
			}
		}
		if name != fn {
			continue
		}
		if u, err := url.Parse(ep); err != nil || u.Port() != want.Port() {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// killFunction SIGKILLs every process of the function (a crash: no deferred code, no
// response to the runtime API) and returns their IDs.
func killFunction(t *testing.T, endpoint, fn string) []int {
	t.Helper()
	pids := functionProcesses(t, endpoint, fn)
	for _, pid := range pids {
		p, err := os.FindProcess(pid)
		if err == nil {
			err = p.Kill() // SIGKILL
		}
		if err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("kill %d: %v", pid, err)
		}
	}
	return pids
}

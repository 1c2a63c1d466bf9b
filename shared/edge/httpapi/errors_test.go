package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"syscall"
	"testing"

	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

func TestFailureStatuses(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		err        error
		status     int
		code       string
		retryAfter bool
	}{
		{fmt.Errorf("store: %w: %w", vaxpass.ErrUnavailable, syscall.ENOSPC), http.StatusServiceUnavailable, "unavailable", true},
		{fmt.Errorf("store: %w", vaxpass.ErrConflict), http.StatusConflict, codeConflict, false},
		{&vaxpass.InvalidFieldError{Field: "after", Err: fmt.Errorf("bad")}, http.StatusBadRequest, "invalid_value", false},
		{fmt.Errorf("disk on fire"), http.StatusInternalServerError, "internal_error", false},
	} {
		resp := failure(quiet, "test", tc.err)
		var body struct {
			Error struct{ Code, Field string }
		}
		if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != tc.status || body.Error.Code != tc.code || (resp.Headers["Retry-After"] != "") != tc.retryAfter {
			t.Errorf("%v: %d %s, Retry-After %q; want %d %s", tc.err, resp.StatusCode, body.Error.Code, resp.Headers["Retry-After"], tc.status, tc.code)
		}
	}
}

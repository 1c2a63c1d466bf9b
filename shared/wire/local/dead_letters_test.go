package local_test

import (
	"context"
	"errors"
	"testing"

	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// Malformed dead-letter IDs are the caller's fault, and say which field is wrong.
func TestDeadLetterArgumentsNameTheField(t *testing.T) {
	l, _ := openOps(t)
	ctx := context.Background()
	for _, tc := range []struct {
		desc, field string
		err         error
	}{
		{"central after", "after", second(l.ListDead(ctx, "central", "not-an-id", 10))},
		{"matcher after", "after", second(l.ListDead(ctx, "matcher", "x1", 10))},
		{"central ids", "ids", third(l.Redrive(ctx, "central", []string{"not-an-id"}))},
		{"matcher ids", "ids", third(l.Redrive(ctx, "matcher", []string{"1"}))},
	} {
		var fe *vaxpass.InvalidFieldError
		if !errors.As(tc.err, &fe) || fe.Field != tc.field || !errors.Is(tc.err, vaxpass.ErrInvalid) {
			t.Errorf("%s: %v; want an invalid %s", tc.desc, tc.err, tc.field)
		}
	}
}

func second[T any](_ T, err error) error        { return err }
func third[T, U any](_ T, _ U, err error) error { return err }

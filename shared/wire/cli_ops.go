package wire

import (
	"fmt"

	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// CheckOpsActor validates an operator's name as the CLI takes it (--actor, $USER): the
// rule of ops key actors, since either ends up as the audit trail's actor.
func CheckOpsActor(actor string) error {
	if !opsActorRe.MatchString(actor) {
		return fmt.Errorf("%w: actor %q: want 1-64 of a-z 0-9 . _ - (starting with a letter or digit)", vaxpass.ErrInvalid, actor)
	}
	return nil
}

package queue

import (
	"context"
	"errors"
	"sync/atomic"
	"syscall"

	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

// storageWatch learns that the storage refused a write of one handler call as
// unavailable (full disk, read-only file system). A handler reports failed messages
// without their reasons (SQSEventResponse), so the pump cannot tell a full disk from a
// poison message by the response; the embedded store tells it instead: it finds the
// watch in the call's context (vaxpass.WithStorageWatcher) and calls StorageUnavailable
// whenever it maps a write's failure to that error. (The feed package has the same
// watch: neither pump imports the other.)
type storageWatch struct{ refused atomic.Bool }

// StorageUnavailable is the store's call: a write failed with err, a
// vaxpass.ErrUnavailable. It may come from several goroutines of one handler call.
func (w *storageWatch) StorageUnavailable(error) { w.refused.Store(true) }

// watchStorage returns ctx carrying a new watch, for one handler call.
func watchStorage(ctx context.Context) (context.Context, *storageWatch) {
	w := &storageWatch{}
	return vaxpass.WithStorageWatcher(ctx, w), w
}

// unavailable reports whether err says the storage cannot take writes now: the
// store's vaxpass.ErrUnavailable (a handler returning it for the whole batch), or the
// file system's own errors, which the pump's writes (bbolt's) return unwrapped.
func unavailable(err error) bool {
	return err != nil && (errors.Is(err, vaxpass.ErrUnavailable) ||
		errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EROFS))
}

//go:build unix

package local

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive flock on path (created 0600), waiting for another
// process's; unlock releases it.
func lockFile(path string) (unlock func(), err error) {
	fh, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(fh.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		fh.Close()
		return nil, err
	}
	// Closing the descriptor releases the lock.
	return func() { fh.Close() }, nil
}

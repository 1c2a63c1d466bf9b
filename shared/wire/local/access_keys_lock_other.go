//go:build !unix

package local

import (
	"errors"
	"io/fs"
	"os"
	"time"
)

// lockFile takes the lock by creating path exclusively, waiting (up to a minute) while
// another process holds it; unlock removes it.
func lockFile(path string) (unlock func(), err error) {
	deadline := time.Now().Add(time.Minute)
	for {
		fh, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			fh.Close()
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, fs.ErrExist) || time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

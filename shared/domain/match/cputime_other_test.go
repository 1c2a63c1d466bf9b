//go:build !unix

package match_test

import "time"

func cpuTime() (time.Duration, bool) { return 0, false }

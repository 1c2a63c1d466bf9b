package hcert

import (
	"encoding/hex"
	"testing"
)

func TestDbgSizeTmp(t *testing.T) {
	files := loadSuite(t)
	var ours, n int
	for _, f := range files {
		if f.test.COSE == nil {
			continue
		}
		src, _ := hex.DecodeString(*f.test.COSE)
		ours += len(appendZlib(nil, src))
		n++
	}
	t.Logf("n %d ours %d", n, ours)
}

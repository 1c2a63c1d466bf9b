package awstest

import (
	"regexp"
	"strings"
	"testing"
)

func TestUniqueName(t *testing.T) {
	valid := regexp.MustCompile(`^[A-Za-z0-9_-]{3,64}$`)
	seen := map[string]bool{}
	for _, prefix := range []string{"doses", "q", "certificates-with-a-long-prefix-name-that-goes-on"} {
		for range 3 {
			n := UniqueName(t, prefix)
			if !valid.MatchString(n) {
				t.Errorf("%q is not a valid table/queue name", n)
			}
			if !strings.HasPrefix(n, "vp-"+prefix[:min(len(prefix), 20)]) {
				t.Errorf("%q does not start with vp-%s", n, prefix)
			}
			if seen[n] {
				t.Errorf("%q twice", n)
			}
			seen[n] = true
		}
	}
}

func TestConfigSkipsUnlessEnabled(t *testing.T) {
	t.Setenv(EnvEnable, "")
	skipped := false
	t.Run("disabled", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		Config(t)
		t.Error("Config returned without VAXPASS_AWS_TESTS=1")
	})
	if !skipped {
		t.Error("the test was not skipped")
	}
}

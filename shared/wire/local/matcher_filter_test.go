package local

import (
	"os"
	"strings"
	"testing"
)

// The embedded matcher and the deployed one subscribe with the same filter.
func TestTemplateHasTheMatcherFilter(t *testing.T) {
	b, err := os.ReadFile("../../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := "- Pattern: '" + MatcherFilter.Pattern() + "'"
	if !strings.Contains(string(b), want) {
		t.Fatalf("template.yaml has no %s", want)
	}
}

package hcert

import (
	"fmt"
	"sort"
	"strings"
	"testing"
)

// outcome counts per flag.
type outcome struct{ pass, fail, xfail, xpass, deviation, skip int }

// TestConformance runs the EU dgc-testdata suite: for every EXPECTED* flag a
// file carries, the matching stage must succeed (true) or fail (false).
// known_issues.csv entries are expected failures (logged, not fatal, as the
// runner's non-strict xfail); testdata/deviations.csv lists our own, which
// must still occur (a stale entry fails, keeping the list minimal).
func TestConformance(t *testing.T) {
	files := loadSuite(t)
	known := loadKnownIssues(t)
	devs := loadDeviations(t)
	usedDevs := map[string]bool{}
	counts := map[string]*outcome{}
	for _, s := range conformanceSteps {
		counts[s.flag] = &outcome{}
	}
	unknownFlags := map[string]int{}

	for _, f := range files {
		t.Run(f.path, func(t *testing.T) {
			for name := range f.test.Expected {
				if _, ok := counts[name]; !ok {
					unknownFlags[name]++
				}
			}
			for _, s := range conformanceSteps {
				want, present := f.test.flag(s.flag)
				if !present {
					continue
				}
				c := counts[s.flag]
				skip, err := s.run(&f, want)
				if skip != "" {
					c.skip++
					continue
				}
				held := (err == nil) == want
				reason := ""
				for _, test := range s.tests {
					if reason == "" {
						reason = known.lookup(test, f.country, f.set)
					}
				}
				devKey := s.flag + " " + f.path
				dev, isDev := devs[devKey]
				if isDev {
					usedDevs[devKey] = true
				}
				switch {
				case held && isDev:
					c.fail++
					t.Errorf("%s: holds now, but deviations.csv lists it (%s); remove the entry", s.flag, dev)
				case held && reason != "":
					c.xpass++
				case held:
					c.pass++
				case reason != "":
					c.xfail++
					t.Logf("%s=%v: known issue %s: %v", s.flag, want, reason, err)
				case isDev:
					c.deviation++
					t.Logf("%s=%v: our deviation (%s): %v", s.flag, want, dev, err)
				case want:
					c.fail++
					t.Errorf("%s=true: stage failed: %v", s.flag, err)
				default:
					c.fail++
					t.Errorf("%s=false: stage succeeded but must fail", s.flag)
				}
			}
		})
	}
	for k := range devs {
		if !usedDevs[k] {
			t.Errorf("deviations.csv entry %q matches no flag in the suite", k)
		}
	}
	var lines []string
	for _, s := range conformanceSteps {
		c := counts[s.flag]
		lines = append(lines, fmt.Sprintf("%-25s pass %3d  fail %d  known-issue xfail %2d xpass %2d  own deviation %d  skipped (data missing) %d",
			s.flag, c.pass, c.fail, c.xfail, c.xpass, c.deviation, c.skip))
	}
	var unk []string
	for k, n := range unknownFlags {
		unk = append(unk, fmt.Sprintf("%s x%d", k, n))
	}
	sort.Strings(unk)
	t.Logf("dgc-testdata: %d files\n%s\nunknown flags ignored (as the runner does): %s",
		len(files), strings.Join(lines, "\n"), strings.Join(unk, ", "))
}

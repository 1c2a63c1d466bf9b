package awsddb

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vaxpass/vaxpass/shared/vaxpass"
)

func TestTimeKey(t *testing.T) {
	for _, tc := range []struct {
		in   time.Time
		want string
		err  bool
	}{
		{time.Date(2022, 9, 1, 8, 0, 0, 0, time.UTC), "2022-09-01T08:00:00.000000000Z", false},
		{time.Date(2022, 9, 1, 15, 0, 0, 5, time.FixedZone("ICT", 7*3600)), "2022-09-01T08:00:00.000000005Z", false},
		{time.Time{}, "0001-01-01T00:00:00.000000000Z", false},
		{time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), "9999-12-31T23:59:59.999999999Z", false},
		{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), "", true},
		{time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), "", true},
	} {
		got, err := timeKey(tc.in)
		if tc.err {
			if !errors.Is(err, vaxpass.ErrInvalid) {
				t.Errorf("timeKey(%s): %q, %v; want ErrInvalid", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("timeKey(%s) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		if !validExpKey(got + "#URN:UVCI:01:VN:X") {
			t.Errorf("validExpKey of a key made of %q is false", got)
		}
	}
	// Query bounds outside the stored range sort before or after every stored key.
	lo, hi := clampTimeKey(time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC)), clampTimeKey(time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC))
	for _, k := range []string{"0000-01-01T00:00:00.000000000Z#A", "9999-12-31T23:59:59.999999999Z#ZZZZ"} {
		if !(lo < k && k < hi) {
			t.Errorf("%q is not between the clamped bounds %q and %q", k, lo, hi)
		}
	}
}

func TestValidExpKey(t *testing.T) {
	for k, want := range map[string]bool{
		"2022-09-01T08:00:00.000000000Z#URN:UVCI:01:VN:ABC#D": true,
		"2022-09-01T08:00:00.000000000Z#":                     false, // no UVCI
		"2022-09-01T08:00:00Z#URN:UVCI:01:VN:ABC#D":           false, // not fixed width
		"2022-13-01T08:00:00.000000000Z#URN":                  false,
		"!not a cursor!":                                      false,
		"":                                                    false,
	} {
		if got := validExpKey(k); got != want {
			t.Errorf("validExpKey(%q) = %v, want %v", k, got, want)
		}
	}
}

func TestListShard(t *testing.T) {
	for in, want := range map[string]string{
		"URN:UVCI:01:VN:AAA111#B": "URN:UVCI:01:VN:A",
		"URN:UVCI:01:VN:":         "URN:UVCI:01:VN:",
		"ABC":                     "ABC",
		"":                        "",
	} {
		if got := listShard(in); got != want {
			t.Errorf("listShard(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzTimeKeyOrder checks that time keys sort as the times they render.
func FuzzTimeKeyOrder(f *testing.F) {
	f.Add(int64(0), int64(0), int64(1), int64(0))
	f.Add(int64(1662019200), int64(5), int64(1662019200), int64(40))
	f.Add(int64(-62135596800), int64(0), int64(253402300799), int64(999999999))
	f.Fuzz(func(t *testing.T, s1, n1, s2, n2 int64) {
		a, b := time.Unix(s1, n1%1e9), time.Unix(s2, n2%1e9)
		ka, errA := timeKey(a)
		kb, errB := timeKey(b)
		if errA != nil || errB != nil {
			return // outside the years a key can hold
		}
		if want := a.Compare(b); strings.Compare(ka, kb) != want {
			t.Errorf("times compare %d, keys %q and %q do not", want, ka, kb)
		}
	})
}

// FuzzListShardOrder checks that reading shards in order, each in key order, is key
// order: a shard is a prefix of fixed length, which keeps order.
func FuzzListShardOrder(f *testing.F) {
	f.Add("URN:UVCI:01:VN:AAA111#B", "URN:UVCI:01:VN:B#C")
	f.Add("URN:UVCI:01:VN:", "URN:UVCI:01:VN:A")
	f.Add("ABC", "ABCDEFGHIJKLMNOPQRSTU")
	f.Fuzz(func(t *testing.T, a, b string) {
		sa, sb := listShard(a), listShard(b)
		if a <= b && sa > sb {
			t.Errorf("%q <= %q but shard %q > %q", a, b, sa, sb)
		}
		if sa < sb && a >= b {
			t.Errorf("shard %q < %q but %q >= %q", sa, sb, a, b)
		}
	})
}

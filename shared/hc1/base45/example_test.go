package base45_test

import (
	"fmt"

	"github.com/vaxpass/vaxpass/shared/hc1/base45"
)

func Example() {
	text := base45.Encode([]byte("Hello!!"))
	fmt.Println(text)
	raw, err := base45.Decode(text)
	fmt.Println(string(raw), err)
	_, err = base45.Decode("GGW")
	fmt.Println(err)
	// Output:
	// %69 VD92EX0
	// Hello!! <nil>
	// base45: invalid input: group at offset 0 has value 65536 > 65535
}

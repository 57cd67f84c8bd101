package canon_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/chatsdk/compliance/internal/canon"
)

// The fields a naive "a || b" join would confuse stay apart, and NULL is not
// the empty string.
func Example() {
	ab := canon.Encode("example.v1", canon.String("ab"), canon.String("c"))
	bc := canon.Encode("example.v1", canon.String("a"), canon.String("bc"))
	fmt.Println(bytes.Equal(ab, bc))

	null := canon.Encode("example.v1", canon.OptString(nil))
	empty := canon.Encode("example.v1", canon.String(""))
	fmt.Println(bytes.Equal(null, empty))

	domain, fields, err := canon.Decode(ab)
	if err != nil {
		panic(err)
	}
	fmt.Println(domain, fields[0].StringValue(), fields[1].StringValue())
	// Output:
	// false
	// false
	// example.v1 ab c
}

// An Encoder reuses its buffer across records on a hot path.
func ExampleEncoder() {
	e := canon.NewEncoder("example.row.v1")
	e.String("tenant-1")
	e.Int(42)
	e.Time(time.Date(2026, 1, 9, 0, 0, 0, 0, time.UTC))
	fmt.Printf("%d bytes\n", len(e.Bytes()))
	// Output:
	// 50 bytes
}

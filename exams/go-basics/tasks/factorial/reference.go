// Reference solution for go-basics/factorial.
package main

import (
	"fmt"
	"os"
	"strconv"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: factorial N")
		os.Exit(2)
	}
	n, err := strconv.Atoi(os.Args[1])
	if err != nil || n < 0 || n > 20 {
		fmt.Fprintf(os.Stderr, "factorial: N must be an integer from 0 to 20, got %q\n", os.Args[1])
		os.Exit(2)
	}
	var f uint64 = 1
	for i := 2; i <= n; i++ {
		f *= uint64(i)
	}
	fmt.Println(f)
}

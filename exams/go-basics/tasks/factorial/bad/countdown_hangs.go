// Known-bad: counts down until n == 1, which never happens for 0 (the loop runs
// for about 2^64 iterations): the zero case times out.
package main

import (
	"fmt"
	"os"
	"strconv"
)

func main() {
	n, err := strconv.ParseUint(os.Args[1], 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var result uint64 = 1
	for n != 1 {
		result *= n
		n--
	}
	fmt.Println(result)
}

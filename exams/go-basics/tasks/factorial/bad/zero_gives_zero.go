// Known-bad: starts the product at n (n * (n-1) * ... * 2), so 0! comes out as 0.
package main

import (
	"fmt"
	"os"
	"strconv"
)

func main() {
	n, err := strconv.Atoi(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	result := n
	for i := n - 1; i > 1; i-- {
		result *= i
	}
	fmt.Println(result)
}

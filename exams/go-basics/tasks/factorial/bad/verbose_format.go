// Known-bad: decorates the answer ("N! = x") instead of printing just the number.
package main

import (
	"fmt"
	"os"
	"strconv"
)

func main() {
	n, err := strconv.Atoi(os.Args[1])
	if err != nil || n < 0 || n > 20 {
		fmt.Println("Please provide an integer between 0 and 20")
		os.Exit(1)
	}
	var result uint64 = 1
	for i := 2; i <= n; i++ {
		result *= uint64(i)
	}
	fmt.Printf("%d! = %d\n", n, result)
}

// Known-bad: computes in int32, which silently wraps around above 12!.
package main

import (
	"fmt"
	"os"
	"strconv"
)

func factorial(n int32) int32 {
	result := int32(1)
	for i := int32(2); i <= n; i++ {
		result *= i
	}
	return result
}

func main() {
	n, err := strconv.Atoi(os.Args[1])
	if err != nil {
		fmt.Println("invalid number")
		os.Exit(1)
	}
	fmt.Println(factorial(int32(n)))
}

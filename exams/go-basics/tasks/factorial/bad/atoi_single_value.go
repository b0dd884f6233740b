// Known-bad: does not compile; strconv.Atoi returns two values.
package main

import (
	"fmt"
	"os"
	"strconv"
)

func main() {
	n := strconv.Atoi(os.Args[1])
	result := 1
	for i := 2; i <= n; i++ {
		result *= i
	}
	fmt.Println(result)
}

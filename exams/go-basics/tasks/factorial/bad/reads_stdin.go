// Known-bad: reads N from standard input instead of the command line; on empty
// stdin fmt.Scan fails, the error is ignored and N stays 0.
package main

import "fmt"

func main() {
	var n int
	fmt.Scan(&n)
	var result uint64 = 1
	for i := 2; i <= n; i++ {
		result *= uint64(i)
	}
	fmt.Println(result)
}

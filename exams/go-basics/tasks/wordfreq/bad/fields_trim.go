// Known-bad: splits on whitespace and trims punctuation from the ends only, so
// "don't", "dog's" and "well-known" stay single words.
package main

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strings"
	"unicode"
)

func main() {
	counts := make(map[string]int)
	scanner := bufio.NewScanner(os.Stdin)
	scanner.Split(bufio.ScanWords)
	for scanner.Scan() {
		w := strings.TrimFunc(scanner.Text(), func(r rune) bool {
			return !unicode.IsLetter(r) && !unicode.IsDigit(r)
		})
		if w == "" {
			continue
		}
		counts[strings.ToLower(w)]++
	}
	type pair struct {
		w string
		n int
	}
	pairs := make([]pair, 0, len(counts))
	for w, n := range counts {
		pairs = append(pairs, pair{w, n})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].n == pairs[j].n {
			return pairs[i].w < pairs[j].w
		}
		return pairs[i].n > pairs[j].n
	})
	for i := 0; i < len(pairs) && i < 10; i++ {
		fmt.Printf("%s %d\n", pairs[i].w, pairs[i].n)
	}
}

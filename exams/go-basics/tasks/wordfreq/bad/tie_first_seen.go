// Known-bad: stable-sorts by count only, so equal counts stay in first-seen order
// instead of ascending byte order.
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
	counts := map[string]int{}
	var order []string
	reader := bufio.NewReader(os.Stdin)
	var sb strings.Builder
	flush := func() {
		if sb.Len() == 0 {
			return
		}
		w := strings.ToLower(sb.String())
		if counts[w] == 0 {
			order = append(order, w)
		}
		counts[w]++
		sb.Reset()
	}
	for {
		r, _, err := reader.ReadRune()
		if err != nil {
			break
		}
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			sb.WriteRune(r)
		} else {
			flush()
		}
	}
	flush()
	sort.SliceStable(order, func(i, j int) bool { return counts[order[i]] > counts[order[j]] })
	if len(order) > 10 {
		order = order[:10]
	}
	for _, w := range order {
		fmt.Printf("%s %d\n", w, counts[w])
	}
}

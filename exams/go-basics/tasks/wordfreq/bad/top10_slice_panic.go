// Known-bad: takes list[:10] without checking the length. With no words the nil
// slice panics (exit status 2); with fewer than 10 words it panics or, when append
// left spare capacity (9 words: capacity 16), prints a zero-value line " 0".
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"unicode"
)

type wordCount struct {
	word  string
	count int
}

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		panic(err)
	}
	counts := map[string]int{}
	for _, w := range strings.FieldsFunc(string(data), func(r rune) bool {
		return !(unicode.IsLetter(r) || unicode.IsDigit(r))
	}) {
		counts[strings.ToLower(w)]++
	}
	var list []wordCount
	for w, c := range counts {
		list = append(list, wordCount{w, c})
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].count != list[j].count {
			return list[i].count > list[j].count
		}
		return list[i].word < list[j].word
	})
	for _, wc := range list[:10] {
		fmt.Printf("%s %d\n", wc.word, wc.count)
	}
}

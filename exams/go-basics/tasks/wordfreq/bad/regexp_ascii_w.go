// Known-bad: splits words with the regexp \w+, which in Go (RE2) is ASCII-only,
// so "Über" becomes "ber" and Greek words disappear.
package main

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
)

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	re := regexp.MustCompile(`\w+`)
	counts := make(map[string]int)
	for _, w := range re.FindAllString(string(data), -1) {
		counts[strings.ToLower(w)]++
	}
	type kv struct {
		Word  string
		Count int
	}
	var list []kv
	for w, c := range counts {
		list = append(list, kv{w, c})
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].Count == list[j].Count {
			return list[i].Word < list[j].Word
		}
		return list[i].Count > list[j].Count
	})
	for i, e := range list {
		if i == 10 {
			break
		}
		fmt.Printf("%s %d\n", e.Word, e.Count)
	}
}

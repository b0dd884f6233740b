// Reference solution for go-basics/wordfreq.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"unicode"
)

type entry struct {
	word  string
	count int
}

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wordfreq:", err)
		os.Exit(1)
	}
	notWord := func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }
	counts := map[string]int{}
	for _, w := range strings.FieldsFunc(string(data), notWord) {
		counts[strings.ToLower(w)]++
	}
	entries := make([]entry, 0, len(counts))
	for w, c := range counts {
		entries = append(entries, entry{w, c})
	}
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].count != entries[j].count {
			return entries[i].count > entries[j].count
		}
		return entries[i].word < entries[j].word
	})
	if len(entries) > 10 {
		entries = entries[:10]
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for _, e := range entries {
		fmt.Fprintf(out, "%s %d\n", e.word, e.count)
	}
}

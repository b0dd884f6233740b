// Known-bad: stable-sorts by size only and relies on the walk order for ties, but
// WalkDir goes directory by directory ("a/x.txt" before "a b.txt" and "a.txt"),
// which is not byte order of the whole path.
package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

type item struct {
	size int64
	rel  string
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: treewalk DIR")
		os.Exit(1)
	}
	root := os.Args[1]
	var items []item
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		items = append(items, item{info.Size(), filepath.ToSlash(rel)})
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// WalkDir visits entries in lexical order, so ties are already sorted by path.
	sort.SliceStable(items, func(i, j int) bool { return items[i].size > items[j].size })
	for _, it := range items {
		fmt.Println(it.size, it.rel)
	}
}

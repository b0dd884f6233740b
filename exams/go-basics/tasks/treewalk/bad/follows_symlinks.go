// Known-bad: recurses with os.ReadDir and os.Stat, and os.Stat follows symbolic
// links: a link to a directory is walked and a link to a file is listed as a file.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

type entry struct {
	path string
	size int64
}

var files []entry

func walk(root, rel string) {
	entries, err := os.ReadDir(filepath.Join(root, rel))
	if err != nil {
		return
	}
	for _, e := range entries {
		p := filepath.Join(rel, e.Name())
		info, err := os.Stat(filepath.Join(root, p))
		if err != nil {
			continue // broken link or vanished file
		}
		if info.IsDir() {
			walk(root, p)
		} else if info.Mode().IsRegular() {
			files = append(files, entry{filepath.ToSlash(p), info.Size()})
		}
	}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: treewalk <dir>")
		os.Exit(1)
	}
	walk(os.Args[1], "")
	sort.Slice(files, func(i, j int) bool {
		if files[i].size != files[j].size {
			return files[i].size > files[j].size
		}
		return files[i].path < files[j].path
	})
	for _, f := range files {
		fmt.Printf("%d %s\n", f.size, f.path)
	}
}

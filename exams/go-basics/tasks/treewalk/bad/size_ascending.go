// Known-bad: sorts by size ascending (smallest first) instead of descending.
package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

type file struct {
	path string
	size int64
}

func main() {
	root := os.Args[1]
	var files []file
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		files = append(files, file{filepath.ToSlash(rel), info.Size()})
		return nil
	})
	sort.Slice(files, func(i, j int) bool {
		if files[i].size != files[j].size {
			return files[i].size < files[j].size
		}
		return files[i].path < files[j].path
	})
	for _, f := range files {
		fmt.Printf("%d %s\n", f.size, f.path)
	}
}

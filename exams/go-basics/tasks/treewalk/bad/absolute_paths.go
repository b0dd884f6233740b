// Known-bad: prints the path exactly as the walk reports it (the argument joined
// with the relative path) instead of the path relative to the argument.
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
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			files = append(files, file{filepath.ToSlash(path), info.Size()})
		}
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
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

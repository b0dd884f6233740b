// Known-bad: does not compile; mixes up filepath.WalkDir (fs.WalkDirFunc, taking
// an fs.DirEntry) with filepath.Walk (taking an os.FileInfo).
package main

import (
	"fmt"
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
	err := filepath.WalkDir(root, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			rel, _ := filepath.Rel(root, path)
			files = append(files, file{filepath.ToSlash(rel), info.Size()})
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

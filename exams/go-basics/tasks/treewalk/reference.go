// Reference solution for go-basics/treewalk.
package main

import (
	"bufio"
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
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: treewalk DIR")
		os.Exit(2)
	}
	root := os.Args[1]
	var files []file
	// WalkDir uses Lstat: symbolic links are reported as links, never followed.
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
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		files = append(files, file{filepath.ToSlash(rel), info.Size()})
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "treewalk:", err)
		os.Exit(1)
	}
	sort.Slice(files, func(i, j int) bool {
		if files[i].size != files[j].size {
			return files[i].size > files[j].size
		}
		return files[i].path < files[j].path
	})
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for _, f := range files {
		fmt.Fprintf(out, "%d %s\n", f.size, f.path)
	}
}

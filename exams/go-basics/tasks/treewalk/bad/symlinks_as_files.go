// Known-bad: filepath.Walk does not follow links, but the filter is only
// !info.IsDir(), so symbolic links are listed with their Lstat size (the length
// of the link target).
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

type fileInfo struct {
	Path string
	Size int64
}

func main() {
	root := os.Args[1]
	var files []fileInfo
	err := filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		files = append(files, fileInfo{strings.ReplaceAll(rel, string(os.PathSeparator), "/"), info.Size()})
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	sort.Slice(files, func(i, j int) bool {
		if files[i].Size == files[j].Size {
			return files[i].Path < files[j].Path
		}
		return files[i].Size > files[j].Size
	})
	for _, f := range files {
		fmt.Printf("%d %s\n", f.Size, f.Path)
	}
}

package images

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"flotilla.dev/flotilla/internal/buildcache"
	"flotilla.dev/flotilla/internal/procs"
	"flotilla.dev/flotilla/internal/version"
)

// SelfRef is the image of the flotilla binary, the agent's default image
// (cluster attach --agent-image).
func SelfRef() string { return "flotilla:" + version.Flotilla }

// Self is the image of this flotilla binary, at /flotilla, with the
// dynamic loader and libraries it links (a cgo build links the C
// library). It is named SelfRef; a rebuilt binary makes a new archive.
func Self(ctx context.Context) (Image, error) {
	bin, err := procs.Self()
	if err != nil {
		return Image{}, err
	}
	fi, err := os.Stat(bin)
	if err != nil {
		return Image{}, err
	}
	sum := sha256.Sum256([]byte(bin + "\x00" + strconv.FormatInt(fi.Size(), 10) + "\x00" + fi.ModTime().String()))
	id := hex.EncodeToString(sum[:])[:12]
	ref := SelfRef()
	tag, err := name.NewTag(ref)
	if err != nil {
		return Image{}, fmt.Errorf("image name %q: %w", ref, err)
	}
	archive, err := buildcache.File("images", "flotilla-"+id+".tar", func(dir, out string) error {
		files, err := withLibraries(bin)
		if err != nil {
			return err
		}
		img, err := imageOf(files, "/flotilla", gzip.BestSpeed)
		if err != nil {
			return err
		}
		if err := tarball.WriteToFile(out, tag, img); err != nil {
			return err
		}
		// Archives of binaries rebuilt since are of no more use.
		old, _ := filepath.Glob(filepath.Join(dir, "flotilla-*.tar"))
		for _, o := range old {
			if filepath.Base(o) != "flotilla-"+id+".tar" {
				os.Remove(o)
			}
		}
		return nil
	})
	if err != nil {
		return Image{}, fmt.Errorf("image %s: %w", ref, err)
	}
	return Image{Ref: ref, Archive: archive}, nil
}

// withLibraries maps the image paths of bin (as /flotilla) and of what it
// needs to run to the host files: its ELF interpreter and the shared
// libraries it and they need, found in the usual directories.
func withLibraries(bin string) (map[string]string, error) {
	files := map[string]string{"/flotilla": bin}
	todo := []string{bin}
	for len(todo) > 0 {
		f, err := elf.Open(todo[0])
		if err != nil {
			return nil, err
		}
		todo = todo[1:]
		for _, p := range f.Progs {
			if p.Type != elf.PT_INTERP {
				continue
			}
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				f.Close()
				return nil, err
			}
			interp := string(b[:len(b)-1]) // NUL-terminated
			if _, ok := files[interp]; !ok {
				files[interp] = interp
			}
		}
		libs, err := f.ImportedLibraries()
		f.Close()
		if err != nil {
			return nil, err
		}
		for _, lib := range libs {
			path, err := findLibrary(lib)
			if err != nil {
				return nil, fmt.Errorf("%s needs %s: %w", bin, lib, err)
			}
			if _, ok := files[path]; !ok {
				files[path] = path
				todo = append(todo, path)
			}
		}
	}
	return files, nil
}

var libraryDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}

func findLibrary(lib string) (string, error) {
	for _, d := range libraryDirs {
		p := filepath.Join(d, lib)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("not found in %v", libraryDirs)
}

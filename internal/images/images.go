// Package images builds the OCI images real nodes run where no registry is
// reachable: the pod sandbox's pause image and a small HTTP workload, from
// Go programs whose source the flotilla binary carries. Each is compiled
// once per machine (statically, so the image holds nothing but the
// program), packed as an image archive with go-containerregistry, and
// cached; a node's runtime imports the archive. The tag is the digest of
// the program's source, so a changed program is a new image.
package images

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"flotilla.dev/flotilla/internal/buildcache"
)

//go:embed programs
var programs embed.FS

// Registry is the registry host in the names of the images built here; no
// such registry exists, so a node can only have them by import.
const Registry = "flotilla.local"

// Pause and Hello are the programs this package builds images of.
const (
	Pause = "pause"
	Hello = "hello"
)

// Image is a built image archive.
type Image struct {
	// Ref is the image's name, as pods and the runtime know it.
	Ref string
	// Archive is the image tarball, for the runtime to import.
	Archive string
}

// Ref is the name of program's image, without building it.
func Ref(program string) (string, error) {
	tag, err := sourceTag(program)
	if err != nil {
		return "", err
	}
	return Registry + "/" + program + ":" + tag, nil
}

// Build returns program's image, building it if this machine has not.
func Build(ctx context.Context, program string) (Image, error) {
	ref, err := Ref(program)
	if err != nil {
		return Image{}, err
	}
	tag, _ := name.NewTag(ref)
	archive, err := buildcache.File("images", program+"-"+tag.TagStr()+".tar", func(dir, out string) error {
		return build(ctx, program, tag, out)
	})
	if err != nil {
		return Image{}, fmt.Errorf("image %s: %w", ref, err)
	}
	return Image{Ref: ref, Archive: archive}, nil
}

// sourceTag is the first 12 hex digits of the SHA-256 of program's source.
func sourceTag(program string) (string, error) {
	files, err := fs.Glob(programs, path.Join("programs", program, "*.go"))
	if err != nil || len(files) == 0 {
		return "", fmt.Errorf("no program %q to build an image of", program)
	}
	h := sha256.New()
	for _, f := range files {
		b, err := programs.ReadFile(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// build compiles program and writes its image to out.
func build(ctx context.Context, program string, tag name.Tag, out string) error {
	src, err := os.MkdirTemp("", "flotilla-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(src)
	sub, err := fs.Sub(programs, path.Join("programs", program))
	if err != nil {
		return err
	}
	if err := os.CopyFS(src, sub); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module "+program+"\n\ngo 1.26\n"), 0o644); err != nil {
		return err
	}
	bin := filepath.Join(src, program)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOWORK=off", "GOFLAGS=-mod=mod")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s (the Go toolchain is needed once per machine): %v\n%s", program, err, b)
	}
	img, err := imageOf(map[string]string{"/" + program: bin}, "/"+program, gzip.DefaultCompression)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(out, tag, img)
}

// imageOf is an image of files (image path → host file, followed if a
// symbolic link) whose entrypoint is entry; layers are compressed at
// level (gzip).
func imageOf(files map[string]string, entry string, level int) (v1.Image, error) {
	layer, err := fileLayer(files, level)
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	cfg.Config.Entrypoint = []string{entry}
	cfg.Config.Env = []string{"PATH=/"}
	return mutate.ConfigFile(img, cfg)
}

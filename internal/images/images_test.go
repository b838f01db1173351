package images

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func TestBuildMakesARunnableImageArchive(t *testing.T) {
	// A new image cache, but the Go build cache the machine has.
	gocache, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOCACHE", strings.TrimSpace(string(gocache)))
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	img, err := Build(context.Background(), Hello)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(img.Ref, Registry+"/hello:") {
		t.Fatalf("ref %q", img.Ref)
	}
	tag, _ := name.NewTag(img.Ref)
	got, err := tarball.ImageFromPath(img.Archive, &tag)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := got.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if ep := cfg.Config.Entrypoint; len(ep) != 1 || ep[0] != "/hello" {
		t.Fatalf("entrypoint %v", ep)
	}
	layers, _ := got.Layers()
	if len(layers) != 1 {
		t.Fatalf("%d layers", len(layers))
	}
	again, err := Build(context.Background(), Hello)
	if err != nil || again != img {
		t.Fatalf("second build %v %v, want the cached %v", again, err, img)
	}
}

func TestUnknownProgramIsRefused(t *testing.T) {
	if _, err := Build(context.Background(), "nope"); err == nil || !strings.Contains(err.Error(), `no program "nope"`) {
		t.Fatalf("err %v", err)
	}
}

func TestSelfImageHoldsTheBinaryAndWhatItLinks(t *testing.T) {
	files, err := withLibraries("/bin/ls")
	if err != nil {
		t.Fatal(err)
	}
	if files["/flotilla"] != "/bin/ls" || len(files) < 3 {
		t.Fatalf("files of a dynamically linked program: %v", files)
	}
	var interp bool
	for p := range files {
		interp = interp || strings.Contains(p, "ld-linux")
	}
	if !interp {
		t.Fatalf("no dynamic loader among %v", files)
	}
}

// Package version reports Flotilla's version and the Kubernetes version it
// embeds. The Kubernetes version comes from the module graph, so a plain
// `go build` or `go run` reports the real version rather than v0.0.0-master.
package version

import (
	"runtime/debug"
	"strings"
	"sync/atomic"
	_ "unsafe" // for go:linkname

	_ "k8s.io/component-base/version" // must initialise before init below
)

// Flotilla is this build's version; release builds set it with -ldflags -X.
var Flotilla = "v0.1.0-dev"

// The embedded Kubernetes components read their version from these variables,
// which Kubernetes' own build sets with -ldflags. Setting them at init time
// gives every build the version of the k8s.io/kubernetes module it links.
//
//go:linkname gitVersion k8s.io/component-base/version.gitVersion
var gitVersion string

//go:linkname gitMajor k8s.io/component-base/version.gitMajor
var gitMajor string

//go:linkname gitMinor k8s.io/component-base/version.gitMinor
var gitMinor string

//go:linkname gitTreeState k8s.io/component-base/version.gitTreeState
var gitTreeState string

//go:linkname dynamicGitVersion k8s.io/component-base/version.dynamicGitVersion
var dynamicGitVersion atomic.Value

func init() {
	if !strings.HasPrefix(gitVersion, "v0.0.0-") {
		return // set by -ldflags
	}
	v := moduleVersion("k8s.io/kubernetes")
	if v == "" {
		return
	}
	gitVersion, gitTreeState = v, "clean"
	dynamicGitVersion.Store(v)
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) >= 2 {
		gitMajor, gitMinor = parts[0], parts[1]
	}
}

// Kubernetes returns the version of the embedded Kubernetes components.
func Kubernetes() string { return gitVersion }

func moduleVersion(path string) string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, m := range info.Deps {
		if m.Path == path {
			if m.Replace != nil {
				return m.Replace.Version
			}
			return m.Version
		}
	}
	return ""
}

package kubeconfig

import (
	"encoding/json"

	"k8s.io/apimachinery/pkg/runtime"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// ExtensionAttach names the bootstrap kubeconfig's context extension that
// carries the attach (the Cluster's UID) the agent's certificate must name.
// An extension, because kubectl and client-go keep and ignore it.
const ExtensionAttach = "flotilla.dev/attach"

type attachExtension struct {
	UID string `json:"uid"`
}

// SetAttach records the attach UID in ctx.
func SetAttach(ctx *clientcmdapi.Context, uid string) {
	raw, _ := json.Marshal(attachExtension{UID: uid})
	if ctx.Extensions == nil {
		ctx.Extensions = map[string]runtime.Object{}
	}
	ctx.Extensions[ExtensionAttach] = &runtime.Unknown{Raw: raw, ContentType: runtime.ContentTypeJSON}
}

// AttachOf reads the attach UID SetAttach recorded in ctx, or "" for a
// kubeconfig an earlier version wrote.
func AttachOf(ctx *clientcmdapi.Context) string {
	u, ok := ctx.Extensions[ExtensionAttach].(*runtime.Unknown)
	if !ok {
		return ""
	}
	var ext attachExtension
	if json.Unmarshal(u.Raw, &ext) != nil {
		return ""
	}
	return ext.UID
}

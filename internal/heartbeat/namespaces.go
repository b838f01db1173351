package heartbeat

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"

	fv1 "flotilla.dev/flotilla/api/v1alpha1"
)

// NamespacesDigest digests a cluster's ClusterNamespaces by their names and
// resourceVersions, in any order: two lists with the same digest hold the
// same objects. A restarted hub sends it in its token, and an agent whose
// list has the same digest need not list them again: 10,000 agents listing
// at once were most of a restarted hub's load.
func NamespacesDigest(nss []fv1.ClusterNamespace) string {
	keys := make([]string, len(nss))
	for i := range nss {
		keys[i] = nss[i].Name + "\x00" + nss[i].ResourceVersion
	}
	slices.Sort(keys)
	sum := sha256.Sum256([]byte(strings.Join(keys, "\n")))
	return hex.EncodeToString(sum[:12])
}

package v1alpha1

// LabelReachPolicy names the access policy a hub ClusterRole or
// ClusterRoleBinding granting reach (ProxyResource/ProxySubresource) comes
// from. The hub finds the reach objects of policies deleted while it was
// down by it.
const LabelReachPolicy = "flotilla.dev/reach-policy"

// Package lifecycle tests the local provider end to end: a real hub makes
// real clusters (etcd, kube-apiserver, controller manager and scheduler of
// Kubernetes v1.36.3 and v1.37.2, simulated nodes), then scales, upgrades,
// and deletes them, through the CLI and the hub's API, with a hub killed
// in the middle and components that cannot start.
package lifecycle

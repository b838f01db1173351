// Package capi tests the Cluster API provider and 'flotilla cluster
// import' end to end: a real hub, a real "management" apiserver serving
// Cluster API's own CRDs (those of sigs.k8s.io/cluster-api v1.14.2, read
// from the module as Go fetches it), and a real "workload" cluster.
//
// No Cluster API controller or infrastructure provider runs here: the tests
// play their part against the real CRDs, as they would: they create the
// ClusterClass, set the Cluster's status (phase, conditions, replica
// counts) and publish its kubeconfig Secret, then check what Flotilla
// writes and reports.
package capi

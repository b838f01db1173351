// Package v1alpha1 holds Flotilla's API types, group flotilla.dev, served by
// the hub as CustomResourceDefinitions. It imports only apimachinery so that
// clients can use it without the rest of Flotilla.
//
// +kubebuilder:object:generate=true
// +groupName=flotilla.dev
package v1alpha1

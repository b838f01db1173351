// Package crd embeds Flotilla's CustomResourceDefinitions, generated from
// api/v1alpha1 by controller-gen (make generate).
package crd

import "embed"

// Files holds one YAML CustomResourceDefinition per file.
//
//go:embed *.yaml
var Files embed.FS

package config

import "embed"

// CRDs are the CustomResourceDefinitions of crd/, as `make manifests` generates them.
//
//go:embed crd/*.yaml
var CRDs embed.FS

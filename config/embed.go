package config

import "embed"

// CRDs are the CustomResourceDefinitions of crd/, as `make manifests` generates them.
//
//go:embed crd/*.yaml
var CRDs embed.FS

// ArgoCDHealth is the Argo CD health check of a Canary (argocd/health.lua), in the Lua Argo CD
// runs resource customizations in.
//
//go:embed argocd/health.lua
var ArgoCDHealth string

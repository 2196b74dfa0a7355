// Package router holds what the routers share: the extra rules a strategy puts before the split
// (Extras), the match helpers both meshes use, and the errors a controller must tell apart. The
// Routing they write is the rollout core's (rollout.Routing).
package router

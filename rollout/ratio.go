package rollout

// RatioReplicas is the canary's replica count that gives it about weight percent of the pods
// beside primary primary replicas, which is the share of requests a Service spreading them
// evenly sends it: round(primary*weight/(100-weight)), at least 1 when weight is above 0, and 0
// when it is 0. A share of 100 or more cannot be a ratio beside a running primary (validation
// keeps provider kubernetes below it); for it RatioReplicas returns primary, an even split, rather
// than a replica count without bound.
func RatioReplicas(primary, weight int32) int32 {
	if weight <= 0 {
		return 0
	}
	primary = max(primary, 0)
	if weight >= 100 {
		return max(primary, 1)
	}
	n := divRound(int64(primary)*int64(weight), int64(100-weight))
	return int32(max(n, 1))
}

// Share is the canary's share, in percent, of the pods behind a Service that selects primary
// primary pods and canary canary pods: round(100*canary/(primary+canary)), 0 when there are none.
func Share(primary, canary int32) int32 {
	primary, canary = max(primary, 0), max(canary, 0)
	total := int64(primary) + int64(canary)
	if total == 0 {
		return 0
	}
	return int32(divRound(100*int64(canary), total))
}

// divRound is n/d rounded half up, for n >= 0 and d > 0.
func divRound(n, d int64) int64 { return (2*n + d) / (2 * d) }

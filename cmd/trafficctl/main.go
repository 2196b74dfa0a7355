// Command trafficctl is one binary: `trafficctl controller` runs the controller; the other
// verbs are the command line that shows and steers rollouts.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	root := &cobra.Command{
		Use:           "trafficctl",
		Short:         "Progressive delivery for Kubernetes: canary rollouts gated by analysis",
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.AddCommand(newControllerCommand())
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

package cli

import "github.com/spf13/cobra"

// Stub, replaced by the verb's implementation.
func newPlanCommand(f *Factory) *cobra.Command { return &cobra.Command{Use: "plan"} }

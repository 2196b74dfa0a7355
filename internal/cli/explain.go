package cli

import "github.com/spf13/cobra"

// Stub, replaced by the verb's implementation.
func newExplainCommand(f *Factory) *cobra.Command { return &cobra.Command{Use: "explain"} }

package cli

import "github.com/spf13/cobra"

// Stubs, replaced by the verbs' implementation.
func newPromoteCommand(f *Factory) *cobra.Command { return &cobra.Command{Use: "promote"} }
func newAbortCommand(f *Factory) *cobra.Command   { return &cobra.Command{Use: "abort"} }
func newPauseCommand(f *Factory) *cobra.Command   { return &cobra.Command{Use: "pause"} }
func newResumeCommand(f *Factory) *cobra.Command  { return &cobra.Command{Use: "resume"} }
func newRetryCommand(f *Factory) *cobra.Command   { return &cobra.Command{Use: "retry"} }

package cli

import (
	"context"

	"github.com/spf13/cobra"
)

// verbs are the CLI's commands, one file each.
func verbs(f *Factory) []*cobra.Command {
	return []*cobra.Command{
		newGetCommand(f),
		newStatusCommand(f),
		newHistoryCommand(f),
		newExplainCommand(f),
		newPromoteCommand(f),
		newAbortCommand(f),
		newPauseCommand(f),
		newResumeCommand(f),
		newRetryCommand(f),
		newLintCommand(f),
		newPlanCommand(f),
		newVersionCommand(f),
	}
}

// options are a verb's Options, completed, validated and run in kubectl's order.
type options interface {
	Complete(f *Factory, args []string) error
	Validate() error
	Run(ctx context.Context) error
}

// runOptions is the RunE of a verb whose Options follow that order.
func runOptions(f *Factory, o options) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := o.Complete(f, args); err != nil {
			return err
		}
		if err := o.Validate(); err != nil {
			return err
		}
		return o.Run(cmd.Context())
	}
}

package cli

import "github.com/spf13/cobra"

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

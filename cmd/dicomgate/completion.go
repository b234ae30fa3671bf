package main

import (
	"github.com/spf13/cobra"
)

// completionShells are the shells `dicomgate completion` writes scripts for.
var completionShells = []string{"bash", "zsh", "fish", "powershell"}

func init() {
	// The default completion command captures the output writer when it is
	// created; this one writes to the current command's output.
	rootCmd.CompletionOptions.DisableDefaultCmd = true
	var noDesc bool
	cmd := &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Print the shell completion script for dicomgate",
		Long: `Print the script that completes dicomgate's commands, flags, flag values
(-o formats) and file arguments in the given shell. Load it for the current
session, or install it once:

  bash:       source <(dicomgate completion bash)
              dicomgate completion bash > /etc/bash_completion.d/dicomgate
              (needs the bash-completion package)
  zsh:        source <(dicomgate completion zsh)
              dicomgate completion zsh > "${fpath[1]}/_dicomgate"
              (needs "autoload -U compinit; compinit" in ~/.zshrc)
  fish:       dicomgate completion fish | source
              dicomgate completion fish > ~/.config/fish/completions/dicomgate.fish
  powershell: dicomgate completion powershell | Out-String | Invoke-Expression`,
		Example:   `  source <(dicomgate completion bash)`,
		ValidArgs: completionShells,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usage("give one shell: bash, zsh, fish or powershell")
			}
			return cobra.OnlyValidArgs(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			out, root := cmd.OutOrStdout(), cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, !noDesc)
			case "zsh":
				if noDesc {
					return root.GenZshCompletionNoDesc(out)
				}
				return root.GenZshCompletion(out)
			case "fish":
				return root.GenFishCompletion(out, !noDesc)
			}
			return root.GenPowerShellCompletionWithDesc(out)
		},
	}
	cmd.Flags().BoolVar(&noDesc, "no-descriptions", false, "complete without the descriptions of commands and flags")
	rootCmd.AddCommand(cmd)
}

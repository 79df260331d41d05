package cli

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/airshipltd/airship/internal/release"
)

func versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit, Go version and build date",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			out := cmd.OutOrStdout()
			fmt.Fprintln(out, "airship", release.Version)
			fmt.Fprintln(out, "  commit:", release.CommitOf())
			fmt.Fprintln(out, "  go:    ", runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH)
			fmt.Fprintln(out, "  built: ", release.BuildDate)
		},
	}
}

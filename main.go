// Command airship serves the shop API of Airship Ltd. See README.md.
package main

import (
	"os"

	"github.com/airshipltd/airship/cli"
)

func main() { os.Exit(cli.Main()) }

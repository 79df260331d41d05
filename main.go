// Command airship serves the shop API of Airship Ltd. See README.md.
package main

import (
	"os"

	"github.com/airshipltd/airship/app"
)

func main() { os.Exit(app.Main()) }

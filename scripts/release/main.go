// Command release prints the previous release's commit for the Makefile:
//
//	go run ./scripts/release previous
//
// The previous release is the newest release CHANGELOG.md records with its
// commit: the release production may still run, which make test-upgrade
// and make check-proto-compat hold this tree to.
package main

import (
	"fmt"
	"os"

	"github.com/airshipltd/airship/internal/release"
)

func main() {
	if len(os.Args) != 2 || os.Args[1] != "previous" {
		fmt.Fprintln(os.Stderr, "usage: go run ./scripts/release previous")
		os.Exit(2)
	}
	rels, err := release.ReadChangelog(".")
	if err == nil {
		var r release.Release
		if r, err = release.Previous(rels); err == nil {
			fmt.Println(r.Commit)
			return
		}
	}
	fmt.Fprintln(os.Stderr, "release:", err)
	os.Exit(1)
}

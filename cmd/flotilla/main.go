// Command flotilla is Flotilla's single binary: hub, agent, local clusters,
// quickstart and CLI.
package main

import (
	"fmt"
	"os"
	"strings"

	"flotilla.dev/flotilla/internal/cli"
	_ "flotilla.dev/flotilla/internal/version" // sets the embedded Kubernetes version first
)

func main() {
	if err := cli.NewRoot().Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "flotilla: %s\n", oneLine(err.Error()))
		os.Exit(1)
	}
}

// oneLine folds cobra's multi-line suggestions into a single line.
func oneLine(msg string) string {
	msg = strings.TrimSpace(msg)
	msg = strings.Replace(msg, "\n\nDid you mean this?\n\t", "; did you mean ", 1)
	msg = strings.ReplaceAll(msg, "\n\t", ", ")
	return strings.ReplaceAll(msg, "\n", "; ")
}

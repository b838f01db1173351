// Command flotilla is Flotilla's single binary: hub, agent, local clusters,
// quickstart and CLI.
package main

import (
	"fmt"
	"os"

	"flotilla.dev/flotilla/internal/cli"
	_ "flotilla.dev/flotilla/internal/version" // sets the embedded Kubernetes version first
)

func main() {
	if err := cli.NewRoot().Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "flotilla: %v\n", err)
		os.Exit(1)
	}
}

// Command cyrplan plans and applies the configuration of a fleet of Cyrus
// IMAP slots from one CUE layout. See the README.
package main

import (
	"os"

	"github.com/cyrplan/cyrplan/internal/cli"
)

func main() { os.Exit(cli.Main()) }

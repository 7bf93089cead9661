// Command testhosts builds or tears down a fleet of simulated SSH hosts (see
// package testhosts) outside go test, for benchmarks and manual runs. It
// must run as root.
//
//	testhosts [--state DIR] up N         hosts host1 .. hostN
//	testhosts [--state DIR] up NAME...   hosts with these names
//	testhosts [--state DIR] down
//
// up prints the fleet as JSON (subnet, known_hosts, identity, and each
// host's name, address and directory) and leaves it running, its subnet
// reserved, until down. The fleet lives in DIR (default
// /tmp/cyrplan-testhosts). Example:
//
//	ssh -i DIR/id_ed25519 -o UserKnownHostsFile=DIR/known_hosts root@10.200.0.11 hostname
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"strconv"

	"github.com/cyrplan/cyrplan/internal/testhosts"
)

type hostJSON struct {
	Name string `json:"name"`
	Addr string `json:"addr"`
	Dir  string `json:"dir"`
}

type fleetJSON struct {
	Subnet     string     `json:"subnet"`
	Bridge     string     `json:"bridge"`
	Dir        string     `json:"dir"`
	KnownHosts string     `json:"known_hosts"`
	Identity   string     `json:"identity"`
	Hosts      []hostJSON `json:"hosts"`
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("testhosts: ")
	state := flag.String("state", "/tmp/cyrplan-testhosts", "directory of the fleet")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: testhosts [--state DIR] up N|NAME... | down\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	args := flag.Args()
	switch {
	case len(args) >= 2 && args[0] == "up":
		if err := up(*state, args[1:]); err != nil {
			log.Fatal(err)
		}
	case len(args) == 1 && args[0] == "down":
		if err := testhosts.Teardown(*state); err != nil {
			log.Fatal(err)
		}
	default:
		flag.Usage()
		os.Exit(2)
	}
}

func up(dir string, args []string) error {
	names := args
	if n, err := strconv.Atoi(args[0]); err == nil && len(args) == 1 {
		names = nil
		for i := 1; i <= n; i++ {
			names = append(names, fmt.Sprintf("host%d", i))
		}
	}
	f, err := testhosts.Start(testhosts.Options{Dir: dir, Persistent: true, Logf: log.New(os.Stderr, "", 0).Printf}, names...)
	if err != nil {
		return err
	}
	out := fleetJSON{Subnet: f.Subnet, Bridge: f.Bridge, Dir: f.Dir, KnownHosts: f.KnownHosts, Identity: f.Identity}
	for _, n := range names {
		h := f.Host(n)
		out.Hosts = append(out.Hosts, hostJSON{Name: h.Name, Addr: h.Addr, Dir: h.Dir})
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// One hashicorp/memberlist node per process, for scripts/memberlist-compare.py: memberlist's
// LAN defaults (probe interval 1 s, as Chorus's .lan profile), on 127.0.0.1. Prints one line per
// membership event, with the Unix time in milliseconds: "<ms> alive|failed|left <name>".
// SIGTERM leaves gracefully (as `chorus peer` does); SIGKILL is a crash.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/memberlist"
)

type events struct{}

func now() int64 { return time.Now().UnixNano() / int64(time.Millisecond) }

func (events) NotifyJoin(n *memberlist.Node) { fmt.Printf("%d alive %s\n", now(), n.Name) }
func (events) NotifyLeave(n *memberlist.Node) {
	kind := "failed"
	if n.State == memberlist.StateLeft {
		kind = "left"
	}
	fmt.Printf("%d %s %s\n", now(), kind, n.Name)
}
func (events) NotifyUpdate(*memberlist.Node) {}

func main() {
	name := flag.String("name", "", "node name")
	port := flag.Int("port", 0, "UDP and TCP port on 127.0.0.1")
	join := flag.String("join", "", "comma-separated host:port of members to join through")
	flag.Parse()
	config := memberlist.DefaultLANConfig()
	config.Name = *name
	config.BindAddr = "127.0.0.1"
	config.BindPort = *port
	config.AdvertisePort = *port
	config.Events = events{}
	config.LogOutput = io.Discard
	list, err := memberlist.Create(config)
	if err != nil {
		fmt.Fprintln(os.Stderr, "memberlist:", err)
		os.Exit(1)
	}
	fmt.Printf("%d ready %s\n", now(), *name)
	if *join != "" {
		for {
			if _, err := list.Join(strings.Split(*join, ",")); err == nil {
				break
			}
			time.Sleep(time.Second)
		}
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
	list.Leave(2 * time.Second)
	list.Shutdown()
}

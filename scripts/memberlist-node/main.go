// One hashicorp/memberlist node per process, for scripts/memberlist-compare.py: memberlist's
// LAN defaults (probe interval 1 s, as Chorus's .lan profile), on 127.0.0.1. Prints one line per
// membership event, with the Unix time in milliseconds: "<ms> alive|failed|left <name>".
// SIGTERM leaves gracefully (as `chorus peer` does); SIGKILL is a crash.
//
// Traffic: the node runs on memberlist's own NetTransport, wrapped to count what it sends: UDP
// packets and their payload bytes (WriteTo/WriteToAddress), and the payload bytes written to TCP
// streams (memberlist's push-pull syncs and fallback probes), on connections it dials and on
// those it accepts. On SIGUSR1 it prints the totals so far as one line:
// "<ms> traffic udp_packets=P udp_bytes=B tcp_bytes=T tcp_conns=C" (TCP/IP headers, handshakes
// and ACKs are not counted, as Chorus counts UDP payload bytes only).
// -secret-key HEX (16, 24 or 32 bytes) turns on memberlist's AES-GCM encryption.
package main

import (
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
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

// What the node has sent since it started.
var udpPackets, udpBytes, tcpBytes, tcpConns uint64

// countingTransport is memberlist's NetTransport with its sends counted; it behaves as the
// transport memberlist.Create makes by itself.
type countingTransport struct {
	*memberlist.NetTransport
	streams chan net.Conn
}

func newCountingTransport(inner *memberlist.NetTransport) *countingTransport {
	t := &countingTransport{NetTransport: inner, streams: make(chan net.Conn)}
	go func() {
		for conn := range inner.StreamCh() {
			t.streams <- countConn(conn)
		}
	}()
	return t
}

func countPacket(b []byte) {
	atomic.AddUint64(&udpPackets, 1)
	atomic.AddUint64(&udpBytes, uint64(len(b)))
}

func (t *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	countPacket(b)
	return t.NetTransport.WriteTo(b, addr)
}

func (t *countingTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	countPacket(b)
	return t.NetTransport.WriteToAddress(b, a)
}

func (t *countingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	conn, err := t.NetTransport.DialTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	return countConn(conn), nil
}

func (t *countingTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	conn, err := t.NetTransport.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	return countConn(conn), nil
}

func (t *countingTransport) StreamCh() <-chan net.Conn { return t.streams }

type countingConn struct{ net.Conn }

func countConn(conn net.Conn) net.Conn {
	atomic.AddUint64(&tcpConns, 1)
	return countingConn{conn}
}

func (c countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	atomic.AddUint64(&tcpBytes, uint64(n))
	return n, err
}

func printTraffic() {
	fmt.Printf("%d traffic udp_packets=%d udp_bytes=%d tcp_bytes=%d tcp_conns=%d\n", now(),
		atomic.LoadUint64(&udpPackets), atomic.LoadUint64(&udpBytes), atomic.LoadUint64(&tcpBytes),
		atomic.LoadUint64(&tcpConns))
}

func main() {
	name := flag.String("name", "", "node name")
	port := flag.Int("port", 0, "UDP and TCP port on 127.0.0.1")
	join := flag.String("join", "", "comma-separated host:port of members to join through")
	secretKey := flag.String("secret-key", "", "hex AES key (16, 24 or 32 bytes): encrypt with memberlist's keyring")
	flag.Parse()
	// Before anything runs: SIGUSR1 would otherwise end the process.
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			printTraffic()
		}
	}()
	config := memberlist.DefaultLANConfig()
	config.Name = *name
	config.BindAddr = "127.0.0.1"
	config.BindPort = *port
	config.AdvertisePort = *port
	config.Events = events{}
	config.LogOutput = io.Discard
	if *secretKey != "" {
		key, err := hex.DecodeString(*secretKey)
		if err != nil {
			fmt.Fprintln(os.Stderr, "-secret-key:", err)
			os.Exit(2)
		}
		config.SecretKey = key
	}
	inner, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{config.BindAddr},
		BindPort:  config.BindPort,
		Logger:    log.New(io.Discard, "", 0),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "memberlist:", err)
		os.Exit(1)
	}
	config.Transport = newCountingTransport(inner)
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

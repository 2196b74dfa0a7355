// Package freeport hands out loopback TCP ports for processes a test starts and that bind
// their port themselves (an apiserver, Prometheus, the controller's probes).
//
// A port from listening on :0 comes from the kernel's ephemeral range, the same range outgoing
// connections take their source ports from; between closing the probe listener and the child
// binding it, a connection (a load generator, a watch) can take it, and the child fails with
// "address already in use". Ports here come from below the ephemeral range, where the kernel
// never picks on its own, and each is handed out once per test process.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// lowest is where the ports handed out start: above the well-known and most registered ports.
const lowest = 10000

var (
	mu    sync.Mutex
	given = map[int]bool{}
)

// Port is a loopback port nobody listens on, outside the ephemeral range, not handed out before
// in this process.
func Port() (int, error) {
	top := ephemeralStart()
	if top-lowest < 1000 {
		return kernelPort()
	}
	mu.Lock()
	defer mu.Unlock()
	for range 200 {
		p := lowest + rand.IntN(top-lowest)
		if given[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		_ = l.Close()
		given[p] = true
		return p, nil
	}
	return 0, fmt.Errorf("no free loopback port between %d and %d", lowest, top)
}

// Address is 127.0.0.1 with a Port.
func Address() (string, error) {
	p, err := Port()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
}

// ephemeralStart is the first port of the kernel's ephemeral range (32768 when it cannot be read).
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}

// kernelPort is the fallback when the ephemeral range leaves too little room below it.
func kernelPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

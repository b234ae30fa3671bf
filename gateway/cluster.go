package gateway

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
)

// Cluster is a named set of upstream endpoints, like an Envoy STATIC cluster
// with the ROUND_ROBIN load-balancing policy.
type Cluster struct {
	// Name is the cluster name the filter (or the default route) refers to.
	Name string
	// Endpoints are "host:port" addresses, tried in round-robin order.
	Endpoints []string

	next atomic.Uint64
}

// pick returns the next endpoint in round-robin order.
func (c *Cluster) pick() string {
	n := c.next.Add(1) - 1
	return c.Endpoints[n%uint64(len(c.Endpoints))]
}

// ParseCluster parses a --cluster flag value of the form
// "NAME=HOST:PORT[,HOST:PORT…]".
func ParseCluster(spec string) (*Cluster, error) {
	name, eps, ok := strings.Cut(spec, "=")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return nil, fmt.Errorf("cluster %q: want NAME=HOST:PORT[,HOST:PORT...], e.g. pacs-a=127.0.0.1:4242", spec)
	}
	if strings.ContainsAny(name, " \t\"") {
		return nil, fmt.Errorf("cluster %q: name %q must not contain spaces or quotes", spec, name)
	}
	c := &Cluster{Name: name}
	for i, ep := range strings.Split(eps, ",") {
		ep = strings.TrimSpace(ep)
		host, port, err := net.SplitHostPort(ep)
		if err != nil {
			return nil, fmt.Errorf("cluster %q: endpoint %d %q: %v (want HOST:PORT)", name, i+1, ep, err)
		}
		if host == "" {
			return nil, fmt.Errorf("cluster %q: endpoint %d %q: empty host (want HOST:PORT, e.g. 127.0.0.1:4242)", name, i+1, ep)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("cluster %q: endpoint %d %q: port %q is not a number in 1..65535", name, i+1, ep, port)
		}
		c.Endpoints = append(c.Endpoints, ep)
	}
	return c, nil
}

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"time"

	"github.com/dicomgate/dicomgate/cmd/dicomgate/defaults"
	"github.com/dicomgate/dicomgate/gateway"
	"github.com/dicomgate/dicomgate/internal/rejector"
)

// startDemoRejector starts the demo's in-process rejector (what `dicomgate
// reject` runs) on a loopback port with a fresh random key, and returns its
// cluster, the demo policy with that key in place of the embedded
// placeholder, the server (for its counters) and a function that stops it.
func startDemoRejector(policyJSON []byte, logf func(string, ...any)) (*gateway.Cluster, []byte, *rejector.Server, func(), error) {
	if n := bytes.Count(policyJSON, []byte(defaults.DemoRejectKeyPlaceholder)); n != 1 {
		return nil, nil, nil, nil, fmt.Errorf("the embedded demo policy holds the rejectKey placeholder %d times, want once", n)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("demo rejector key: %w", err)
	}
	key := base64.StdEncoding.EncodeToString(raw)
	s, err := rejector.New(rejector.Config{Keys: []string{key}, Logf: logf})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("demo rejector: %w", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Serve(ln); err != nil {
			logf("rejector stopped: %v", err)
		}
	}()
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		<-done
	}
	pol := bytes.Replace(policyJSON, []byte(defaults.DemoRejectKeyPlaceholder), []byte(key), 1)
	return &gateway.Cluster{Name: defaults.ClusterRejector, Endpoints: []string{ln.Addr().String()}}, pol, s, stop, nil
}

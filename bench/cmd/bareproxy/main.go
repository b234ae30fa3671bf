// Command bareproxy is the floor of `make bench-system` (issue 16): the least a TLS-terminating TCP proxy can do
// in Go — crypto/tls with the same certificates as every other target (mutual TLS), then io.Copy both ways to
// one backend, nothing inspected. A DICOM-aware proxy is measured against it.
//
//	bareproxy -listen 127.0.0.1:0 -backend 127.0.0.1:11113 -cert server.crt -key server.key -client-ca ca.crt
//
// It prints "bareproxy: listening on ADDR" once it accepts, and runs until SIGINT or SIGTERM.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "HOST:PORT to accept TLS on")
	backend := flag.String("backend", "", "HOST:PORT of the plain-TCP backend")
	cert := flag.String("cert", "", "server certificate chain (PEM)")
	key := flag.String("key", "", "server private key (PEM)")
	clientCA := flag.String("client-ca", "", "CA bundle (PEM) client certificates must verify against (empty: no client certificate asked)")
	flag.Parse()
	if err := run(*listen, *backend, *cert, *key, *clientCA); err != nil {
		fmt.Fprintln(os.Stderr, "bareproxy:", err)
		os.Exit(1)
	}
}

func run(listen, backend, cert, key, clientCA string) error {
	if backend == "" || cert == "" || key == "" {
		return errors.New("-backend, -cert and -key are required")
	}
	cfg, err := serverTLS(cert, key, clientCA)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	fmt.Printf("bareproxy: listening on %s\n", ln.Addr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() { <-sig; ln.Close() }()
	err = serve(tls.NewListener(ln, cfg), backend)
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// serverTLS loads the server certificate and, with clientCA, requires and verifies client certificates.
func serverTLS(cert, key, clientCA string) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if clientCA != "" {
		pem, err := os.ReadFile(clientCA)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = x509.NewCertPool()
		if !cfg.ClientCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate", clientCA)
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// serve relays every accepted connection to backend until ln is closed.
func serve(ln net.Listener, backend string) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go relay(c, backend)
	}
}

// relay copies c <-> a new connection to backend; each direction's end is passed on as a half close where the
// connection supports it, and both are closed once both directions ended.
func relay(c net.Conn, backend string) {
	defer c.Close()
	up, err := net.Dial("tcp", backend)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(up, c)
		_ = up.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	_, _ = io.Copy(c, up)
	if tc, ok := c.(*tls.Conn); ok {
		_ = tc.CloseWrite()
	}
	<-done
}

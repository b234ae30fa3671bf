package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dicomgate/dicomgate/bench/internal/machine"
	"github.com/dicomgate/dicomgate/gateway"
	"github.com/dicomgate/dicomgate/internal/demopacs"
	"github.com/dicomgate/dicomgate/internal/loadgen"
	"github.com/dicomgate/dicomgate/internal/scu"
)

// The targets: each starts its process (or, for direct, a listener in this process) on a free loopback port.

// setup writes the certificates, starts the backends and every target and waits until each answers a C-ECHO.
func (e *env) setup(ctx context.Context) error {
	pki, err := gateway.WriteDemoPKI(filepath.Join(e.dir, "pki"), gateway.PKIOptions{ClientCN: benchCallingAE})
	if err != nil {
		return err
	}
	e.pki = pkiFiles{cert: pki.ServerCert, key: pki.ServerKey, ca: pki.CACert, clientURI: pki.ClientURI}
	if e.client, err = scu.ClientTLS(pki.CACert, pki.ClientCert, pki.ClientKey); err != nil {
		return err
	}
	e.client.ServerName = "localhost"
	// The backend discards instances (no directory): the benchmark measures the proxies, not a disk.
	plain, err := demopacs.Start("127.0.0.1:0", demopacs.Config{Name: "backend"})
	if err != nil {
		return err
	}
	e.backend = plain.Addr().(*net.TCPAddr).Port
	direct, err := e.startDirect()
	if err != nil {
		return err
	}
	skip := map[string]bool{}
	for _, s := range strings.Split(e.o.skip, ",") {
		skip[strings.TrimSpace(s)] = true
	}
	add := func(name string, port int) {
		if !skip[name] {
			e.targets = append(e.targets, loadgen.Target{Name: name, Addr: "127.0.0.1:" + strconv.Itoa(port)})
		}
	}
	add("direct", direct)
	for _, t := range []struct {
		names []string
		start func(context.Context) ([]int, error)
	}{
		{[]string{"bare"}, e.startBare},
		{[]string{"serve-1"}, func(ctx context.Context) ([]int, error) { return e.startServe(ctx, 1) }},
		{[]string{"serve-1000"}, func(ctx context.Context) ([]int, error) { return e.startServe(ctx, 1000) }},
		{[]string{"nginx"}, e.startNginx},
		{[]string{"haproxy"}, e.startHAProxy},
		{[]string{"envoy"}, func(ctx context.Context) ([]int, error) { return e.startEnvoy(ctx, false) }},
		{[]string{"envoy-filter"}, func(ctx context.Context) ([]int, error) { return e.startEnvoy(ctx, true) }},
	} {
		if all(t.names, skip) {
			continue
		}
		ports, err := t.start(ctx)
		if err != nil {
			return fmt.Errorf("starting %s: %w", strings.Join(t.names, ", "), err)
		}
		for i, n := range t.names {
			add(n, ports[i])
		}
	}
	if skip["bare"] {
		return fmt.Errorf("-skip %s: the bare proxy is the baseline of every ratio; it cannot be left out", e.o.skip)
	}
	for _, t := range e.targets {
		if err := e.awaitEcho(t); err != nil {
			return err
		}
	}
	return nil
}

func all(names []string, set map[string]bool) bool {
	for _, n := range names {
		if !set[n] {
			return false
		}
	}
	return true
}

// startDirect serves a second demo acceptor behind the same mutual TLS, in this process.
func (e *env) startDirect() (int, error) {
	cert, err := tls.LoadX509KeyPair(e.pki.cert, e.pki.key)
	if err != nil {
		return 0, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	srv := &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: e.client.RootCAs, ClientAuth: tls.RequireAndVerifyClientCert}
	go func() { _ = demopacs.New(demopacs.Config{Name: "direct"}).Serve(tls.NewListener(ln, srv)) }()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// freePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// start runs a target process in the background, its output into dir/<name>.log; the context's end stops it
// with SIGTERM (SIGKILL 10 s later).
func (e *env) start(ctx context.Context, name, bin string, args ...string) error {
	logf, err := os.Create(filepath.Join(e.dir, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("%s: %w", bin, err)
	}
	go func() { _ = cmd.Wait(); logf.Close() }()
	e.procs = append(e.procs, cmd)
	e.names = append(e.names, name)
	return nil
}

func (e *env) stopAll() {
	e.cancel()
	for _, c := range e.procs {
		if c.Process != nil {
			// Wait (done by start's goroutine) ends once the process exited; poll its state.
			for deadline := time.Now().Add(12 * time.Second); time.Now().Before(deadline) && syscall.Kill(c.Process.Pid, 0) == nil; {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
}

func (e *env) startBare(ctx context.Context) ([]int, error) {
	bin := filepath.Join(e.dir, "bareproxy")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./bench/cmd/bareproxy")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building bench/cmd/bareproxy (run from the repository): %w\n%s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	return []int{port}, e.start(ctx, "bare", bin, "-listen", "127.0.0.1:"+strconv.Itoa(port), "-backend", "127.0.0.1:"+strconv.Itoa(e.backend),
		"-cert", e.pki.cert, "-key", e.pki.key, "-client-ca", e.pki.ca)
}

func (e *env) startServe(ctx context.Context, rules int) ([]int, error) {
	pol, err := benchPolicy(rules, e.pki.clientURI)
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("serve-%d", rules)
	polFile := filepath.Join(e.dir, name+".policy.json")
	if err := os.WriteFile(polFile, pol, 0o644); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	return []int{port}, e.start(ctx, name, e.o.bin, "serve", "--listen", "127.0.0.1:"+strconv.Itoa(port),
		"--tls-cert", e.pki.cert, "--tls-key", e.pki.key, "--client-ca", e.pki.ca, "--cluster", "backend=127.0.0.1:"+strconv.Itoa(e.backend),
		"--policy", polFile, "--early-data-bytes", "65536", "--wasm", e.o.wasm, "--workers", strconv.Itoa(e.o.workers))
}

// startPackaged starts a proxy from a Debian package: cmd (found on the PATH, else an error naming pkgs), its
// configuration for a free port written to dir/<name>.conf, and its command line for that file.
func (e *env) startPackaged(ctx context.Context, name, pkgs string, conf func(port int) (string, error), args func(file string) []string) ([]int, error) {
	bin, err := exec.LookPath(name)
	if err != nil {
		return nil, fmt.Errorf("%s is not installed: `make bench-system` installs it as root (apt-get install %s); or leave it out with -skip %s", name, pkgs, name)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	text, err := conf(port)
	if err != nil {
		return nil, err
	}
	file := filepath.Join(e.dir, name+".conf")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		return nil, err
	}
	return []int{port}, e.start(ctx, name, bin, args(file)...)
}

func (e *env) startNginx(ctx context.Context) ([]int, error) {
	return e.startPackaged(ctx, "nginx", "nginx libnginx-mod-stream",
		func(port int) (string, error) { return nginxConfig(e.dir, port, e.backend, e.o.workers, e.pki), nil },
		func(file string) []string {
			return []string{"-p", e.dir, "-c", file, "-e", filepath.Join(e.dir, "nginx-error.log")}
		})
}

func (e *env) startHAProxy(ctx context.Context) ([]int, error) {
	return e.startPackaged(ctx, "haproxy", "haproxy",
		func(port int) (string, error) {
			// HAProxy takes the certificate and its key in one PEM file.
			var pem []byte
			for _, f := range []string{e.pki.cert, e.pki.key} {
				b, err := os.ReadFile(f)
				if err != nil {
					return "", err
				}
				pem = append(pem, b...)
			}
			crt := filepath.Join(e.dir, "haproxy.pem")
			return haproxyConfig(port, e.backend, e.o.workers, crt, e.pki.ca), os.WriteFile(crt, pem, 0o600)
		},
		func(file string) []string { return []string{"-db", "-f", file} })
}

// startEnvoy starts Envoy with the plain listener, or with the filter listener (and the 1-rule policy).
func (e *env) startEnvoy(ctx context.Context, filter bool) ([]int, error) {
	var ports [3]int // admin, listener, unrouted
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	name, wasm, pol := "envoy", "", []byte(nil)
	if filter {
		var err error
		name = "envoy-filter"
		if pol, err = benchPolicy(1, e.pki.clientURI); err != nil {
			return nil, err
		}
		if wasm, err = filepath.Abs(e.o.wasm); err != nil {
			return nil, err
		}
	}
	boot, err := envoyBootstrap(ports[0], ports[1], e.backend, ports[2], wasm, pol, e.pki)
	if err != nil {
		return nil, err
	}
	conf := filepath.Join(e.dir, name+".json")
	if err := os.WriteFile(conf, boot, 0o644); err != nil {
		return nil, err
	}
	// The wasm logger at info: each association writes its audit line, as with the manifests' install values
	// and as `dicomgate serve` does.
	return ports[1:2], e.start(ctx, name, e.o.envoy, "-c", conf, "--disable-hot-restart", "--concurrency", strconv.Itoa(e.o.workers),
		"-l", "warning", "--component-log-level", "wasm:info", "--log-path", filepath.Join(e.dir, name+"-app.log"))
}

// awaitEcho retries a checked C-ECHO association through t until it succeeds (Envoy compiles the filter for
// seconds before its listeners accept) or 3 minutes passed.
func (e *env) awaitEcho(t loadgen.Target) error {
	cfg := scu.Config{Addr: t.Addr, TLS: e.client, CallingAE: benchCallingAE, CalledAE: benchCalledAE, Timeout: 10 * time.Second,
		Contexts: []scu.Context{{AbstractSyntax: scu.UIDVerification, TransferSyntax: scu.UIDImplicitVRLittleEndian}}}
	rq := cfg.RQ()
	var last error
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		a, _, err := scu.Associate(cfg, rq)
		if err == nil {
			if err = a.Echo(1); err == nil {
				err = a.Release()
			} else {
				a.Abort()
			}
		}
		if err == nil {
			return nil
		}
		last = err
	}
	return fmt.Errorf("target %s (%s) never answered a C-ECHO: %v (logs in %s; -keep keeps them)", t.Name, t.Addr, last, e.dir)
}

// printRSS prints, per started process, its resident memory and its children's (nginx's workers) after the
// passes: what each alternative holds once it has served every pass. The direct target and the backend run in
// this process and are not listed.
func (e *env) printRSS() error {
	fmt.Printf("\n| process (after the passes) | VmRSS, process and children (MiB) |\n| --- | ---: |\n")
	for i, c := range e.procs {
		kib, err := treeRSS(c.Process.Pid)
		if err != nil {
			return fmt.Errorf("memory of %s: %w", e.names[i], err)
		}
		fmt.Printf("| %s | %.1f |\n", e.names[i], float64(kib)/1024)
	}
	return nil
}

// treeRSS is VmRSS (KiB) of pid plus that of its direct children.
func treeRSS(pid int) (int64, error) {
	var total int64
	for _, p := range append(children(pid), pid) {
		n, err := rssKiB(p)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// children lists the processes whose parent is pid, from /proc/*/stat.
func children(pid int) []int {
	var out []int
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		child, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		// The fields after the command name (which may hold spaces and parentheses): state, ppid, …
		if i := strings.LastIndexByte(string(b), ')'); i >= 0 {
			if f := strings.Fields(string(b[i+1:])); len(f) > 1 && f[1] == strconv.Itoa(pid) {
				out = append(out, child)
			}
		}
	}
	return out
}

// treeCPU is the CPU time (ns, the threads' schedstat) of pid plus that of its direct children.
func treeCPU(pid int) (int64, error) {
	var total int64
	for _, p := range append(children(pid), pid) {
		c, err := machine.ReadCPU(p)
		if err != nil {
			return 0, err
		}
		total += c.SchedNs
	}
	return total, nil
}

// rssKiB is VmRSS of pid.
func rssKiB(pid int) (int64, error) {
	rss, _, err := machine.ReadRSS(pid)
	return rss, err
}

// cpuOf samples every started process's CPU time (ns), by process name.
func (e *env) cpuOf() (map[string]int64, error) {
	out := map[string]int64{}
	for i, c := range e.procs {
		ns, err := treeCPU(c.Process.Pid)
		if err != nil {
			return nil, fmt.Errorf("CPU time of %s: %w", e.names[i], err)
		}
		out[e.names[i]] = ns
	}
	return out, nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/dicomgate/dicomgate/internal/rejector"
	"github.com/spf13/cobra"
)

// rejectFlags are the flags of `dicomgate reject`.
type rejectFlags struct {
	listen, metrics     string
	keyFiles            []string
	artim, maxAge       time.Duration
	linger, drain       time.Duration
	maxRQBytes, maxConn int
}

func init() {
	var f rejectFlags
	cmd := &cobra.Command{
		Use:   "reject --key-file FILE [flags]",
		Short: "Run the rejector: answer associations the filter routes to rejectCluster with an A-ASSOCIATE-RJ",
		Long: `Run the rejector, the upstream that turns a policy deny with "respond":
"reject" into a real A-ASSOCIATE-RJ (a Wasm network filter cannot write to the
client itself). The filter routes such an association to the policy's
rejectCluster and puts a 56-byte preamble, signed with the policy's rejectKey,
in front of the A-ASSOCIATE-RQ; the rejector verifies the preamble (its key and
its age), reads the RQ, answers with the A-ASSOCIATE-RJ result, source and
reason the preamble names, and closes. A connection without a valid preamble
(not from the filter, forged, expired) or without an RQ within --artim is
closed without a byte and counted; nothing else is ever sent.

--key-file holds the accepted keys, one per line (the policy's rejectKey;
during a rotation the new and the old key, see sdk/policy/README.md). The
rejector logs one line per refused connection on standard error; /metrics
(Prometheus text) and /healthz are served on --metrics. When listening it
prints exactly "dicomgate: rejector listening on ADDR". SIGINT or SIGTERM stops
accepting, lets open connections finish (up to --drain-timeout) and exits 0.`,
		Example: `  openssl rand -base64 32 > reject.key   # the same text goes into the policy's rejectKey
  dicomgate reject --listen 0.0.0.0:11112 --key-file reject.key --metrics 0.0.0.0:9090`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runReject(ctx, cmd.ErrOrStderr(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:11113", "HOST:PORT of the DICOM listener (the rejectCluster endpoint)")
	fl.StringArrayVar(&f.keyFiles, "key-file", nil, "file of accepted keys, one per line (the policy's rejectKey); repeatable")
	fl.StringVar(&f.metrics, "metrics", "", "HOST:PORT serving /metrics (Prometheus text) and /healthz")
	fl.DurationVar(&f.artim, "artim", rejector.DefaultARTIM, "ARTIM timeout: how long a connection may take to send the preamble and the whole A-ASSOCIATE-RQ")
	fl.DurationVar(&f.maxAge, "max-age", rejector.DefaultMaxAge, "how old (or, as clock skew, how far in the future) a preamble may be")
	fl.DurationVar(&f.linger, "linger", rejector.DefaultLinger, "after the A-ASSOCIATE-RJ, how long to wait for the requester to close")
	fl.DurationVar(&f.drain, "drain-timeout", 15*time.Second, "on SIGINT/SIGTERM, how long open connections may take to finish")
	fl.IntVar(&f.maxRQBytes, "max-rq-bytes", rejector.DefaultMaxRQBytes, "largest A-ASSOCIATE-RQ accepted, header included (the policy's maxAssociateRQBytes)")
	fl.IntVar(&f.maxConn, "max-conns", rejector.DefaultMaxConns, "connections open at once; more are closed at accept and counted (cause overload)")
	_ = cmd.MarkFlagFilename("key-file")
	rootCmd.AddCommand(cmd)
}

// runReject implements `dicomgate reject`.
func runReject(ctx context.Context, stderr io.Writer, f rejectFlags) error {
	if len(f.keyFiles) == 0 {
		return usage("missing --key-file: the file with the policy's rejectKey (e.g. from `openssl rand -base64 32`)")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"--artim", f.artim}, {"--max-age", f.maxAge}, {"--linger", f.linger}, {"--drain-timeout", f.drain}} {
		if d.v <= 0 {
			return &exitError{exitUsage, fmt.Errorf("%s %v: must be positive", d.name, d.v)}
		}
	}
	if f.maxRQBytes < 74 || f.maxRQBytes > 16<<20 {
		return &exitError{exitUsage, fmt.Errorf("--max-rq-bytes %d: must be 74..16777216 (the policy's maxAssociateRQBytes range is 1024..16777216)", f.maxRQBytes)}
	}
	if f.maxConn <= 0 {
		return &exitError{exitUsage, fmt.Errorf("--max-conns %d: must be positive", f.maxConn)}
	}
	var keys []string
	for _, name := range f.keyFiles {
		k, err := rejector.ReadKeyFile(name)
		if err != nil {
			return &exitError{exitUsage, fmt.Errorf("--key-file: %w", err)}
		}
		keys = append(keys, k...)
	}
	logger := log.New(stderr, "", log.LstdFlags|log.LUTC)
	s, err := rejector.New(rejector.Config{Keys: keys, ARTIM: f.artim, MaxAge: f.maxAge, Linger: f.linger,
		MaxRQBytes: uint32(f.maxRQBytes), MaxConns: f.maxConn, Logf: logger.Printf})
	if err != nil {
		return &exitError{exitUsage, err}
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return &exitError{exitNegative, fmt.Errorf("--listen %s: %w", f.listen, err)}
	}
	if f.metrics != "" {
		mln, err := net.Listen("tcp", f.metrics)
		if err != nil {
			ln.Close()
			return &exitError{exitNegative, fmt.Errorf("--metrics %s: %w", f.metrics, err)}
		}
		hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = hs.Serve(mln) }()
		defer hs.Close()
		logger.Printf("metrics: http://%s/metrics (also /healthz)", mln.Addr())
	}
	fmt.Fprintf(stderr, "dicomgate: rejector listening on %s\n", ln.Addr())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	select {
	case err := <-done:
		return &exitError{exitNegative, fmt.Errorf("accepting on %s: %w", ln.Addr(), err)}
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), f.drain)
	defer cancel()
	if err := s.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return &exitError{exitNegative, err}
	}
	// Serve returns nil after Shutdown; an accept error that raced with it
	// is still an error.
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		return &exitError{exitNegative, fmt.Errorf("accepting on %s: %w", ln.Addr(), err)}
	}
	return nil
}

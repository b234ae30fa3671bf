package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/dicomgate/dicomgate/internal/loadgen"
	"github.com/spf13/cobra"
)

// benchCompareCmd is `dicomgate bench compare`.
func benchCompareCmd() *cobra.Command {
	var f benchFlags
	var targets []string
	var baseline, svg string
	var rounds int
	cmd := &cobra.Command{
		Use:   "compare --target NAME=HOST:PORT --target NAME=HOST:PORT ... [flags]",
		Short: "Run the same bench scenario against several endpoints side by side, with ratios to a baseline and a chart",
		Long: `Run the scenario of "dicomgate bench" (same flags) against every --target,
interleaved: each of --rounds rounds runs every target once, the order rotating
by one target per round (a,b,c then b,c,a then c,a,b), so no target always
runs first or right after another's heavy phase; on a shared machine only the
ratios of one interleaved run mean much.

It prints, per target, the median across the rounds of p50/p90/p99 latency,
associations/s and (store) MB/s, then per metric the ratio target / --baseline
in every round and its median (Markdown tables; -o json for all of it).
--svg FILE writes a self-contained SVG chart: the latency distribution of every
target (CDF of every round's successful associations) and a bar per target of
its median associations/s (store: MB/s). The file is written atomically.

All targets get the same TLS settings and AE titles: give them the same
certificates (--tls-server-name when their certificate names differ from the
address). Exit status 1 when any association failed.`,
		Example: `  dicomgate bench compare --target direct=127.0.0.1:11113 --target gateway=127.0.0.1:11112 --baseline direct \
      --tls-ca ca.crt --tls-cert client.crt --tls-key client.key -c 8 -n 2000 --rounds 5 --svg compare.svg`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runBenchCompare(ctx, cmd, f, targets, baseline, rounds, svg)
		},
	}
	f.register(cmd)
	fl := cmd.Flags()
	fl.StringArrayVarP(&targets, "target", "t", nil, "an endpoint to compare, NAME=HOST:PORT (repeatable, at least one)")
	fl.StringVar(&baseline, "baseline", "", "NAME of the target the ratios are relative to (default: the first --target)")
	fl.IntVar(&rounds, "rounds", 3, "interleaved rounds")
	fl.StringVar(&svg, "svg", "", "write the chart (latency CDFs and throughput bars) to this SVG file")
	_ = cmd.MarkFlagFilename("svg", "svg")
	return cmd
}

// runBenchCompare implements `dicomgate bench compare`.
func runBenchCompare(ctx context.Context, cmd *cobra.Command, f benchFlags, targetFlags []string, baseline string, rounds int, svg string) error {
	if len(targetFlags) == 0 {
		return usage("no --target: give each endpoint as --target NAME=HOST:PORT")
	}
	if rounds < 1 {
		return usage("--rounds %d: want 1 or more", rounds)
	}
	var targets []loadgen.Target
	for _, s := range targetFlags {
		t, err := loadgen.ParseTarget(s)
		if err != nil {
			return usage("--target: %v", err)
		}
		targets = append(targets, t)
	}
	cfg, err := f.config(cmd.Flags())
	if err != nil {
		return err
	}
	if cfg.SCU.TLS != nil && cfg.SCU.TLS.ServerName == "" {
		host, _, _ := net.SplitHostPort(targets[0].Addr)
		for _, t := range targets[1:] {
			if h, _, _ := net.SplitHostPort(t.Addr); h != host {
				return usage("the targets' hosts differ (%s, %s): give --tls-server-name, the name every target's certificate carries", host, h)
			}
		}
		cfg.SCU.TLS.ServerName = host
	}
	stderr := cmd.ErrOrStderr()
	var failed int64
	cmp, err := loadgen.Compare(ctx, loadgen.CompareConfig{Run: cfg, Targets: targets, Baseline: baseline, Rounds: rounds,
		OnResult: func(round int, r *loadgen.Result) {
			failed += r.Errors
			if !f.quiet {
				fmt.Fprintf(stderr, "round %d/%d %-12s p50 %.3f ms, p99 %.3f ms, %.1f associations/s, %.1f MB/s, %d errors\n",
					round, rounds, r.Target, r.Latency.P50, r.Latency.P99, r.AssociationsPerSecond, r.MBPerSecond, r.Errors)
			}
		}})
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		return usage("%v", err)
	}
	if svg != "" {
		if err := cmp.WriteSVG(svg); err != nil {
			return fmt.Errorf("--svg: %w", err)
		}
	}
	if f.out.format() == formatJSON {
		err = writeJSON(cmd.OutOrStdout(), cmp.Finite())
	} else {
		err = cmp.WriteMarkdown(cmd.OutOrStdout())
	}
	if err != nil {
		return err
	}
	if failed > 0 {
		var kindsSum = map[string]int64{}
		for _, t := range cmp.Targets {
			for k, n := range t.ErrorsByKind {
				kindsSum[t.Name+" "+k] += n
			}
		}
		return &exitError{exitNegative, fmt.Errorf("%d associations failed (%s)", failed, kinds(kindsSum))}
	}
	return nil
}

package main

import (
	"os"
	"os/exec"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	// The typed configs the bootstrap carries must be registered for protojson to resolve their Any types.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/wasm/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	_ "google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/dicomgate/dicomgate/internal/scu"
	"github.com/dicomgate/dicomgate/sdk/pdu"
	"github.com/dicomgate/dicomgate/sdk/policy"
)

// The configurations the targets run, checked without starting them (the run itself checks every target with a
// C-ECHO before measuring). Nothing here is timed.

const testURI = "spiffe://dicomgate.demo/BENCH-SCU"

// Both policies route the benchmark caller (with its certificate) to the backend by the last rule, and deny
// it without the certificate.
func TestPoliciesRouteTheBenchCallerByTheLastRule(t *testing.T) {
	cfg := scu.Config{CallingAE: benchCallingAE, CalledAE: benchCalledAE, Contexts: []scu.Context{{AbstractSyntax: scu.UIDVerification, TransferSyntax: scu.UIDImplicitVRLittleEndian}}}
	var rq pdu.AssociateRQ
	require.NoError(t, (&pdu.Decoder{}).DecodeAssociateRQ(cfg.RQ(), &rq))
	for _, n := range []int{1, 1000} {
		js, err := benchPolicy(n, testURI)
		require.NoError(t, err)
		p, diags, err := policy.Load(js)
		require.NoError(t, err, "%d rules: %v", n, diags)
		d := p.Evaluate(&rq, &policy.Conn{MTLS: true, PeerURISAN: testURI})
		require.Equal(t, policy.ActionRoute, d.Action, "%d rules", n)
		require.Equal(t, "bench", d.Rule)
		require.Equal(t, n-1, d.RuleIndex, "the last of %d rules", n)
		require.Equal(t, "backend", d.Cluster)
		require.Equal(t, policy.ActionDeny, p.Evaluate(&rq, &policy.Conn{}).Action, "no certificate, no route")
	}
	_, err := benchPolicy(0, testURI)
	require.ErrorContains(t, err, "want 1 or more")
}

func TestEnvoyBootstrapDecodesAsEnvoyConfig(t *testing.T) {
	pol, err := benchPolicy(1, testURI)
	require.NoError(t, err)
	for _, wasm := range []string{"", "/x/dicomgate.wasm"} {
		js, err := envoyBootstrap(1, 2, 4, 5, wasm, pol, pkiFiles{cert: "/c", key: "/k", ca: "/ca"})
		require.NoError(t, err)
		var b bootstrapv3.Bootstrap
		require.NoError(t, protojson.Unmarshal(js, &b))
		require.NoError(t, b.ValidateAll())
		ls := b.GetStaticResources().GetListeners()
		require.Len(t, ls, 1)
		require.Contains(t, string(js), `"require_client_certificate": true`, "mutual TLS")
		fs := ls[0].GetFilterChains()[0].GetFilters()
		if wasm == "" {
			require.Equal(t, "envoy", ls[0].GetName())
			require.Len(t, fs, 1, "plain: tcp_proxy only")
			require.NotContains(t, string(js), "max_early_data_bytes")
			continue
		}
		require.Equal(t, "envoy-filter", ls[0].GetName())
		require.Equal(t, "envoy.filters.network.wasm", fs[0].GetName())
		require.Contains(t, string(js), `"max_early_data_bytes": 1048576`)
		require.Contains(t, string(js), `"filename": "/x/dicomgate.wasm"`)
	}
}

// treeRSS counts a process and its children: a child started here is found, and both have a resident size.
func TestTreeRSS(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	require.Contains(t, children(os.Getpid()), cmd.Process.Pid)
	self, err := rssKiB(os.Getpid())
	require.NoError(t, err)
	require.Positive(t, self)
	child, err := rssKiB(cmd.Process.Pid)
	require.NoError(t, err)
	require.Positive(t, child)
	_, err = treeRSS(os.Getpid())
	require.NoError(t, err)
	_, err = rssKiB(1 << 30)
	require.Error(t, err, "no such process")
}

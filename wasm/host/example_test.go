package host_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"

	"github.com/dicomgate/dicomgate/wasm/host"
)

// printTransport prints what the connection model asks its owner to do.
type printTransport struct{ c *host.Conn }

func (p *printTransport) Bind(c *host.Conn) { p.c = c }
func (p *printTransport) ConnectUpstream(cluster string) {
	fmt.Println("connect", cluster)
	p.c.UpstreamConnected()
}
func (p *printTransport) WriteUpstream(b []byte, end bool) {
	fmt.Printf("upstream %q end=%t\n", b, end)
}
func (p *printTransport) WriteDownstream(b []byte, end bool) {
	fmt.Printf("client %q end=%t\n", b, end)
}
func (p *printTransport) CloseDownstream(reason string)      { fmt.Println("close client:", reason) }
func (p *printTransport) CloseUpstream()                     { fmt.Println("close upstream") }
func (p *printTransport) SetDownstreamReadDisabled(off bool) { fmt.Println("reads disabled:", off) }

// Load a plugin and run one connection through it: the Conn drives the Transport like Envoy's filter
// manager and tcp_proxy would drive the sockets.
func Example() {
	wasm, err := os.ReadFile("plugin.wasm")
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	// One Engine per process: the wazero runtime, its compilation cache and the shared data of
	// every plugin. Pass wazero.NewCompilationCacheWithDir(dir) to keep compiled modules on disk.
	eng, err := host.NewEngine(ctx, host.EngineConfig{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer eng.Close(ctx)
	p, err := eng.NewPlugin(ctx, wasm, host.PluginConfig{
		Name: "istio-ingress.dicomgate", RootID: "dicomgate",
		Configuration: []byte(`{"rules":[]}`), FailurePolicy: host.FailClosed,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close(ctx)
	p.Start(ctx) // proxy_on_tick from real time

	c := p.NewConn(host.ConnInfo{
		ID:          1,
		Source:      netip.MustParseAddrPort("192.0.2.10:40000"),
		Destination: netip.MustParseAddrPort("192.0.2.1:11112"),
	}, host.TCPProxyConfig{Cluster: "outbound|104||pacs.example", MaxEarlyDataBytes: 64 << 10}, &printTransport{})
	c.DownstreamData([]byte("\x01\x00..."), false) // A-ASSOCIATE-RQ bytes
	c.UpstreamData([]byte("\x02\x00..."), false)   // A-ASSOCIATE-AC bytes
	c.DownstreamClosed(true)
	fmt.Println(c.State().Cluster, c.FilterState())
}

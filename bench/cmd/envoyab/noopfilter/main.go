// Command noopfilter is the do-nothing proxy-wasm network filter of the envoyab benchmark (its "noop" and "calls"
// listeners): built with stock Go and the same SDK as filters/dicomgate, it creates a TCP context for every
// connection and continues every callback. Its plugin configuration is a decimal number N (empty: 0): on each new
// connection it makes N proxy_get_property calls for source.address, and nothing else. The configuration "pause"
// instead pauses every connection in on_new_connection and continues on its first bytes (tcp_proxy, with
// max_early_data_bytes, then connects upstream after them, as it does with dicomgate). With N = 0 an Envoy listener
// running it measures what any Go proxy-wasm network filter costs per connection on V8 before it does any work;
// with N > 0 the difference measures the cost of one host call that returns a value (the host calls back into the
// guest's allocator for it), so envoyab can tell both apart from dicomgate's own cost.
//
// Build (envoyab -noop does it): GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -ldflags=-s -o noop.wasm ./bench/cmd/envoyab/noopfilter
package main

import (
	"strconv"
	"strings"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// main is never called in a c-shared (reactor) build; the package must be main.
func main() {}

func init() {
	proxywasm.SetPluginContext(func(uint32) types.PluginContext { return &plugin{} })
}

// plugin gives every connection a TCP context that continues everything. (The SDK's SetTcpContext shortcut is not
// usable here: its plugin context's NewHttpContext dereferences nil when Envoy's network filter creates a context.)
type plugin struct {
	types.DefaultPluginContext
	calls int  // host calls per new connection
	pause bool // pause each connection until its first bytes
}

// OnPluginStart reads N from the plugin configuration; anything but a non-negative integer is rejected.
func (p *plugin) OnPluginStart(size int) types.OnPluginStartStatus {
	if size == 0 {
		return types.OnPluginStartStatusOK
	}
	b, err := proxywasm.GetPluginConfiguration()
	if err != nil {
		proxywasm.LogError("noop: reading the plugin configuration: " + err.Error())
		return types.OnPluginStartStatusFailed
	}
	if strings.TrimSpace(string(b)) == "pause" {
		p.pause = true
		return types.OnPluginStartStatusOK
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 {
		proxywasm.LogError("noop: plugin configuration " + strconv.Quote(string(b)) + ": want a non-negative integer (host calls per connection) or \"pause\"")
		return types.OnPluginStartStatusFailed
	}
	p.calls = n
	return types.OnPluginStartStatusOK
}

// NewTcpContext implements types.PluginContext.
func (p *plugin) NewTcpContext(uint32) types.TcpContext { return &conn{calls: p.calls, pause: p.pause} }

// conn continues every callback; on a new connection it makes calls host calls first.
type conn struct {
	types.DefaultTcpContext
	calls int
	pause bool
}

// OnNewConnection implements types.TcpContext.
func (c *conn) OnNewConnection() types.Action {
	for range c.calls {
		if _, err := proxywasm.GetProperty([]string{"source", "address"}); err != nil {
			proxywasm.LogError("noop: get_property(source.address): " + err.Error())
			break
		}
	}
	if c.pause {
		return types.ActionPause
	}
	return types.ActionContinue
}

// OnDownstreamData implements types.TcpContext: continuing here lets a connection paused in OnNewConnection go on
// to tcp_proxy (Envoy's FilterManagerImpl continues the chain when a paused filter returns Continue).
func (c *conn) OnDownstreamData(int, bool) types.Action { return types.ActionContinue }

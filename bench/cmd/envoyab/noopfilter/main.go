// Command noopfilter is the do-nothing proxy-wasm network filter of the envoyab benchmark (its "noop" listener):
// built with stock Go and the same SDK as filters/dicomgate, it creates a TCP context for every connection and
// continues every callback without a single host call. An Envoy listener running it measures what any Go
// proxy-wasm network filter costs per connection on V8 before it does any work, so envoyab can tell that fixed
// cost apart from dicomgate's own.
//
// Build (envoyab -noop does it): GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -ldflags=-s -o noop.wasm ./bench/cmd/envoyab/noopfilter
package main

import (
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
type plugin struct{ types.DefaultPluginContext }

// NewTcpContext implements types.PluginContext.
func (*plugin) NewTcpContext(uint32) types.TcpContext { return &types.DefaultTcpContext{} }

package conformance

import (
	"encoding/hex"
	"net/netip"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var (
	// The property probe runs in on_new_connection and again in on_downstream_data; the filter pauses the
	// connection at first so that tcp_proxy has no upstream yet when the properties are read.
	propsFilter     = `{"new_conn":"pause","probe":"props","probe_on_new":"props"}`
	propsMTLSShape  = newShape(shape{name: "props-mtls", tls: mutualTLS, earlyData: 64 << 10, filter: propsFilter})
	propsTLSShape   = newShape(shape{name: "props-tls", tls: serverTLS, earlyData: 64 << 10, filter: propsFilter})
	propsPlainShape = newShape(shape{name: "props-plain", earlyData: 64 << 10, filter: propsFilter})
	// propsDataOnlyShape reads the properties only once the client has sent data (after the handshake).
	propsDataOnlyShape = newShape(shape{name: "props-mtls-data-only", tls: mutualTLS, earlyData: 64 << 10,
		filter: `{"new_conn":"pause","probe":"props"}`})

	// slowFilter routes like routeShape with an 800 ms inspect deadline.
	slowFilter = `{"new_conn":"pause","pause_until":` + strconv.Itoa(echoRQLen) + `,"cluster_on_data":"b","tick_ms":100,"deadline_ms":800}`
	// slowShape: mutual TLS without tls_inspector (Envoy builds the filter chain at accept).
	slowShape = newShape(shape{name: "slow-mtls", tls: mutualTLS, earlyData: 64 << 10, noInspector: true, filter: slowFilter})
	// slowInspectorShape: mutual TLS with tls_inspector, as Istio's SNI-matching gateway listeners have it.
	slowInspectorShape = newShape(shape{name: "slow-mtls-inspector", tls: mutualTLS, earlyData: 64 << 10, filter: slowFilter})
)

// varyingProp are properties whose values differ between the two sides by construction (ports, ids).
var varyingProp = regexp.MustCompile(`^(PROBE prop (?:source\.port|destination\.port|connection\.id|connection_id) status=\d+) hex=([0-9a-f]*)$`)

// addrProp are the "ip:port" properties; their ports differ between the sides.
var addrProp = regexp.MustCompile(`^(PROBE prop (?:source|destination|upstream)\.address status=0) hex=([0-9a-f]*)$`)

// normaliseProps replaces the values of varyingProp by their length and the ports of addrProp by "PORT".
func normaliseProps(o *observation) {
	for i, e := range o.Events {
		if m := varyingProp.FindStringSubmatch(e); m != nil {
			o.Events[i] = m[1] + " hex-bytes=" + strconv.Itoa(len(m[2])/2)
		}
		if m := addrProp.FindStringSubmatch(e); m != nil {
			b, err := hex.DecodeString(m[2])
			if err == nil {
				if ap, err := netip.ParseAddrPort(string(b)); err == nil {
					o.Events[i] = m[1] + " value=" + ap.Addr().String() + ":PORT"
				}
			}
		}
	}
}

// Property values on a real connection (plain, TLS, mutual TLS), read in on_new_connection (at accept, before
// the TLS handshake: SNI from tls_inspector and the local certificate are known, the peer is not) and in
// on_downstream_data: source/destination address, connection.mtls, tls_version, peer and local certificate
// subject, URI/DNS SANs (empty ⇒ NOT_FOUND), the peer certificate digest, SNI, xds.node.id. A read of
// tls_version before the handshake pins "TLSv1.2" for the connection (props-mtls, props-tls); read only
// after it, the version is the negotiated one (props-mtls-data-only).
func TestPropertiesOnRealConnections(t *testing.T) {
	for _, sh := range []*shape{propsPlainShape, propsTLSShape, propsMTLSShape, propsDataOnlyShape} {
		t.Run(sh.name, func(t *testing.T) {
			envoy, hst := compare(t, sh, reply{}, func(r *run) {
				c := r.dial(dialOpts{})
				c.write([]byte("hello"))
				time.Sleep(200 * time.Millisecond)
				c.closeWrite()
			})
			normaliseProps(&envoy)
			normaliseProps(&hst)
			if sh.tls != plain && sh != propsDataOnlyShape {
				preHandshakeLocalTLS(t, &envoy, &hst)
			}
			requireSame(t, envoy, hst)
		})
	}
}

// A client that is slow after the handshake: the RQ comes 2.5 s after it, the filter's 800 ms deadline
// closes the connection first on both sides.
func TestSlowClientAfterHandshake(t *testing.T) {
	req := rq(t, "echo_default.c2s.bin")
	envoy, hst := compare(t, slowShape, reply{after: len(req), data: []byte("AC")}, func(r *run) {
		c := r.dial(dialOpts{})
		time.Sleep(2500 * time.Millisecond)
		c.write(req)
	})
	require.Equal(t, []string{"EVT new_connection id=c1", "EVT deadline id=c1 close_status=0",
		"EVT downstream_close id=c1 peer=1", "EVT stream_done id=c1"}, envoy.Events)
	requireSame(t, envoy, hst)
}

// A client that is slow before the handshake (TCP connect, 2.5 s, then TLS), on a listener without
// tls_inspector: in Envoy the filter exists from accept, so its inspect deadline counts from accept and closes
// the connection during the wait — the client's handshake fails and nothing reaches a backend.
func TestSlowClientBeforeHandshake(t *testing.T) {
	req := rq(t, "echo_default.c2s.bin")
	envoy, hst := compare(t, slowShape, reply{after: len(req), data: []byte("AC")}, func(r *run) {
		c := r.dial(dialOpts{handshakeDelay: 2500 * time.Millisecond})
		c.write(req)
	})
	require.Equal(t, []string{"EVT new_connection id=c1", "EVT deadline id=c1 close_status=0",
		"EVT downstream_close id=c1 peer=1", "EVT stream_done id=c1"}, envoy.Events, "the inspect deadline runs from accept in Envoy")
	require.Empty(t, envoy.Backends)
	requireSame(t, envoy, hst)
}

// A client without a certificate on the mutual-TLS listener: Envoy has already created the filter at accept,
// so the filter sees a connection that closes with no byte.
func TestFailedHandshakeReachesFilter(t *testing.T) {
	envoy, hst := compare(t, slowShape, reply{}, func(r *run) {
		r.dial(dialOpts{noClientCert: true})
	})
	require.Equal(t, "EVT new_connection id=c1", first(envoy.Events), "Envoy creates the filter before the handshake")
	require.Equal(t, "EVT stream_done id=c1", last(envoy.Events))
	requireSame(t, envoy, hst)
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func last(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

// preHandshakeProps are the properties Envoy already knows in on_new_connection, before the handshake: the
// SNI (from the tls_inspector listener filter, which reads the ClientHello before the filter chain is
// chosen) and the listener's own certificate.
var preHandshakeProps = regexp.MustCompile(`^PROBE prop connection\.(requested_server_name|subject_local_certificate|uri_san_local_certificate|dns_san_local_certificate) `)

// preHandshakeLocalTLS is the known deviation "SNI and local certificate unknown before the handshake":
// gateway creates the filter at accept with an empty TLSInfo (filled by Conn.SetTLS after the
// handshake), while Envoy answers these from the ClientHello (tls_inspector) and the configured certificate
// already in on_new_connection. It checks Envoy's answers, then gives the host's probe lines before the first
// data Envoy's values so the rest compares exactly.
func preHandshakeLocalTLS(t *testing.T, envoy, hst *observation) {
	t.Helper()
	e, h := beforeFirstData(envoy.Events), beforeFirstData(hst.Events)
	require.Equal(t, len(e), len(h), "on_new_connection probes differ in length")
	differ := 0
	for i := range e {
		if !preHandshakeProps.MatchString(e[i]) || e[i] == h[i] {
			continue
		}
		require.NotRegexp(t, `requested_server_name status=0 hex=$`, e[i], "Envoy knows the SNI at accept")
		t.Logf("known deviation (gateway, before the handshake): envoy %q, host %q", e[i], h[i])
		h[i] = e[i]
		differ++
	}
	require.NotZero(t, differ, "gateway now knows SNI and the local certificate at accept: remove this known deviation (preHandshakeLocalTLS) and its README row")
}

// beforeFirstData returns the events before the first on_downstream_data.
func beforeFirstData(events []string) []string {
	for i, e := range events {
		if dataEvent.MatchString(e) {
			return events[:i]
		}
	}
	return events
}

// The same slow client on a listener with tls_inspector (Istio's SNI-matching gateway listeners): the listener
// filter holds the connection until the ClientHello arrives (listener_filters_timeout, 15 s by default) and
// only then builds the filter chain, so the filter's deadline counts from the ClientHello and this client
// gets through. gateway has no listener-filter phase: it builds the chain at accept, so its deadline
// counts from accept and closes the client — a known deviation (wasm/host/README.md), checked here.
func TestSlowClientBeforeClientHelloWithTLSInspector(t *testing.T) {
	req := rq(t, "echo_default.c2s.bin")
	envoy, hst := compare(t, slowInspectorShape, reply{after: len(req), data: []byte("AC")}, func(r *run) {
		c := r.dial(dialOpts{handshakeDelay: 2500 * time.Millisecond})
		c.write(req)
		time.Sleep(200 * time.Millisecond)
		c.closeWrite()
	})
	require.Equal(t, []string{`"AC" eof`}, envoy.Clients, "Envoy: the filter only exists from the ClientHello on")
	require.Equal(t, []string{digest(req) + " +eof"}, envoy.Backends["b"])
	require.NotEqual(t, dump(envoy), dump(hst), "gateway now builds the chain after the ClientHello like Envoy with tls_inspector: remove this known deviation from the test and the README")
	require.Equal(t, []string{"EVT new_connection id=c1", "EVT deadline id=c1 close_status=0",
		"EVT downstream_close id=c1 peer=1", "EVT stream_done id=c1"}, hst.Events, "gateway: deadline from accept")
}

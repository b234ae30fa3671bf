package policy

import (
	"hash/fnv"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dicomgate/dicomgate/sdk/pdu"
)

// FuzzLoad feeds arbitrary bytes to the configuration parser and evaluates
// every accepted policy on real and synthetic A-ASSOCIATE-RQs:
//
//   - Load never panics; every error carries a JSON path (or is a syntax
//     error with a byte offset); an error diagnostic and a nil policy go
//     together;
//   - a policy Load accepts is one the independent reference evaluator
//     (reference_test.go, written from README.md) can read, and for every
//     request Evaluate decides exactly like that reference and like the
//     linear scan (the index);
//   - Explain and Summary do not panic.
//
// The inputs are the policy, a requester stream whose first PDU is decoded
// as the filter decodes it (the seeds are the real dcmtk and Orthanc
// captures of sdk/pdu/testdata; an RQ the decoder refuses as ambiguous is
// still evaluated), the source address and the peer certificate
// ("URI SAN|DNS SAN|subject", empty for no mTLS).
func FuzzLoad(f *testing.F) {
	var policies [][]byte
	files, _ := filepath.Glob("testdata/*.json")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			policies = append(policies, b)
		}
	}
	policies = append(policies, []byte(capturePolicy), []byte(semanticsPolicy), []byte(reasonPolicy))
	for _, s := range []string{
		``, `{}`, `[]`, `null`, `{"rules":[{}]}`, `{"a":1,"a":2}`,
		oneRule(`{"calledAETitles":["A*B?C","\\*"],"sourceCIDRs":["10.0.0.0/8","::1"]}`),
		`{"rules":[{"name":"x","action":"route","service":{"host":"h","port":1e3}}]}`,
		`{"mode":"dry-run","upstreamConnect":"immediate","inspectTimeoutMs":1.5}`,
	} {
		f.Add([]byte(s), []byte(nil), "10.1.2.3", "")
	}
	captures := captureStreams(f)
	for _, pol := range policies {
		for _, stream := range captures {
			if len(stream) > 4096 {
				// The 128-context RQs (~10 and ~130 KB) make every
				// minimization of a new input crawl;
				// TestCapturesMatchReference evaluates them.
				continue
			}
			f.Add(pol, stream, "127.0.0.1", "")
			f.Add(pol, stream, "::ffff:10.1.2.3", "spiffe://hospital/modality/ct1|ct1.example.org|CN=CT1,O=Hospital")
		}
	}
	synthetic := []struct {
		rq   *pdu.AssociateRQ
		conn *Conn
	}{
		{mkRQ("PACS_A", "CT_1", withUser(1, "alice")), &Conn{Source: netip.MustParseAddr("10.1.2.3")}},
		{mkRQ("a*b", "", withUser(2, "alice")), &Conn{Source: netip.MustParseAddr("::1"), MTLS: true, PeerURISAN: "spiffe://x", PeerDNSSAN: "a.b", PeerSubject: "CN=x"}},
		{mkRQ("ABCDEFGHIJKLMNOP", "?", withSyntaxes()), nil},
		{nil, nil},
	}
	f.Fuzz(func(t *testing.T, data, stream []byte, source, peer string) {
		p, diags, err := Load(data)
		nerr := 0
		for _, d := range diags {
			if d.Severity == SeverityError {
				nerr++
			}
			require.NotEmpty(t, d.Message, "diagnostic without message: %+v", d)
			if d.Path == "" {
				require.True(t, strings.HasPrefix(d.Message, "invalid JSON at byte offset "), "diagnostic without path: %+v", d)
			}
		}
		require.Equal(t, nerr > 0, err != nil, "err %v, %d error diagnostics, policy %v", err, nerr, p != nil)
		require.Equal(t, err != nil, p == nil, "err %v, %d error diagnostics, policy %v", err, nerr, p != nil)
		if p == nil {
			return
		}
		_ = p.Summary()
		ref, err := refParse(data)
		require.NoError(t, err, "Load accepted a policy the README calls invalid:\n%s", data)
		check := func(rq *pdu.AssociateRQ, conn *Conn) {
			d := checkDecision(t, data, p, ref, rq, conn)
			_ = p.Explain(rq, conn, d)
		}
		for _, s := range synthetic {
			check(s.rq, s.conn)
		}
		// Requests aimed at this policy's rules, from a generator seeded by
		// the input (deterministic per input).
		h := fnv.New64a()
		h.Write(data)
		seed := h.Sum64()
		h.Write(stream)
		h.Write([]byte(source + "|" + peer))
		for _, pr := range probeRequests(ref, rand.New(rand.NewPCG(seed, h.Sum64())), 48) {
			check(pr.rq, pr.conn)
		}
		rq, _, ok := decodeStream(stream)
		if !ok {
			return
		}
		conn := &Conn{}
		if a, err := netip.ParseAddr(source); err == nil {
			conn.Source = a
		}
		if peer != "" {
			conn.MTLS = true
			conn.PeerURISAN, conn.PeerDNSSAN, conn.PeerSubject, _ = strings3(peer)
		}
		check(rq, conn)
		check(rq, nil)
	})
}

// strings3 splits "a|b|c" into its three parts (missing ones empty).
func strings3(s string) (a, b, c string, ok bool) {
	a, rest, ok1 := strings.Cut(s, "|")
	b, c, ok2 := strings.Cut(rest, "|")
	return a, b, c, ok1 && ok2
}

// capturePolicy is a fuzz seed written for the real captures: their called
// and calling AE titles, abstract syntaxes and user identities, in exact,
// glob, case-insensitive and deny forms, so that mutations of it and of the
// captures cross rule boundaries.
const capturePolicy = `{"defaultAction":"deny","rules":[
 {"name":"qr","match":{"calledAETitles":["QRSCP"],"callingAETitles":["FINDSCU","MOVESCU"]},"action":"route","service":{"host":"qr.dicom.svc.cluster.local","port":11112}},
 {"name":"orthanc","match":{"calledAETitles":["orthanc"]},"aeTitleCaseInsensitive":true,"action":"route","cluster":"outbound|4242||orthanc.dicom.svc.cluster.local"},
 {"name":"scp","match":{"calledAETitles":["ANY-SCP","STORE SCP"],"sourceCIDRs":["127.0.0.0/8","::1"]},"action":"allow","rewriteCalledAETitle":"STORESCP"},
 {"name":"jwt","match":{"userIdentityUsernames":["alice"],"abstractSyntaxes":["1.2.840.10008.1.1"]},"action":"deny","rejectReason":"no-reason-given"},
 {"name":"ct","match":{"onlyAbstractSyntaxes":["1.2.840.10008.5.1.4.1.1.2"],"callingAETitles":["STORE?CU","*SCU"]},"action":"allow"},
 {"name":"mtls","match":{"peerURISANs":["spiffe://hospital/modality/ct1"],"peerDNSSANs":["*.example.org"],"peerSubjects":["CN=CT1,O=Hospital"]},"action":"route","cluster":"outbound|11112||pacs-a"},
 {"name":"echo","match":{"calledAETitles":["ECHO*","*SCP"],"sourceCIDRs":["10.0.0.0/8"]},"action":"deny"}]}`

// semanticsPolicy is a fuzz seed with one rule per documented matching
// behaviour: every match key on its own, wildcards at both ends and alone
// ("?*" and "*?" have no literal part for the index; that rule also makes
// every called AE title "recognized" for the computed reject reason),
// escapes, embedded and surrounding spaces, case-insensitive titles, a deny
// without a reason after allow and route rules, host bits in a prefix.
const semanticsPolicy = `{"defaultAction":"deny","rules":[
 {"name":"end-one","match":{"calledAETitles":["MR?"]},"action":"allow"},
 {"name":"escaped","match":{"callingAETitles":["A\\*B","\\?"]},"action":"allow","rewriteCallingAETitle":"ESC"},
 {"name":"spaces","match":{"calledAETitles":["  STORE SCP "]},"action":"allow"},
 {"name":"fold","match":{"calledAETitles":["pacs_*"]},"aeTitleCaseInsensitive":true,"action":"route","service":{"host":"p.svc","port":104,"subset":"a"}},
 {"name":"uri","match":{"peerURISANs":["spiffe://hospital/modality/ct1"]},"action":"allow"},
 {"name":"dns","match":{"peerDNSSANs":["*.example.org","CT1.example.NET"]},"action":"allow"},
 {"name":"subject","match":{"peerSubjects":["CN=CT1,O=Hospital"]},"action":"allow"},
 {"name":"user","match":{"userIdentityUsernames":["alice"]},"action":"allow"},
 {"name":"any-as","match":{"abstractSyntaxes":["1.2.840.10008.1.1"]},"action":"deny"},
 {"name":"only-as","match":{"onlyAbstractSyntaxes":["1.2.840.10008.5.1.4.1.1.2"]},"action":"allow"},
 {"name":"net","match":{"sourceCIDRs":["10.1.2.3/24","fd00::1/120","127.0.0.1"]},"action":"deny","rejectReason":"local-limit-exceeded"},
 {"name":"no-literal","match":{"calledAETitles":["?*"],"callingAETitles":["*?"],"sourceCIDRs":["192.0.2.0/24"]},"action":"route","cluster":"c1"},
 {"name":"called-deny","match":{"calledAETitles":["ANY-SCP"]},"action":"deny"}]}`

// reasonPolicy is a fuzz seed for the computed reject reason: every
// allow/route rule names its called AE titles, one of them only with
// wildcards ("??", which the index cannot file), so whether a called AE title
// is "recognized" depends on each of them.
const reasonPolicy = `{"rules":[
 {"name":"two","match":{"calledAETitles":["??"],"callingAETitles":["MODALITY"]},"action":"allow"},
 {"name":"pacs","match":{"calledAETitles":["PACS_*"],"callingAETitles":["CT?"]},"aeTitleCaseInsensitive":true,"action":"route","cluster":"c"},
 {"name":"block","match":{"callingAETitles":["X*"]},"action":"deny"}]}`

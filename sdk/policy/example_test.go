package policy_test

import (
	"fmt"
	"net/netip"

	"github.com/dicomgate/dicomgate/sdk/pdu"
	"github.com/dicomgate/dicomgate/sdk/policy"
)

func Example() {
	p, warnings, err := policy.Load([]byte(`{
	  "defaultAction": "deny",
	  "rules": [
	    {"name": "ct-to-pacs-a",
	     "match": {"calledAETitles": ["PACS_A"], "callingAETitles": ["CT_*"], "sourceCIDRs": ["10.0.0.0/8"]},
	     "action": "route", "service": {"host": "pacs-a.dicom.svc.cluster.local", "port": 11112}}
	  ]}`))
	if err != nil {
		fmt.Println(err) // every problem, each with its JSON path
		return
	}
	fmt.Println(len(warnings), "warnings")

	// Normally filled by pdu.Decoder.DecodeAssociateRQ.
	rq := &pdu.AssociateRQ{CalledAETitleRaw: []byte("PACS_A          "), CallingAETitleRaw: []byte("CT_7            ")}
	conn := &policy.Conn{Source: netip.MustParseAddr("10.1.2.3")}
	d := p.Evaluate(rq, conn)
	fmt.Println(d.Action, d.Rule, d.Cluster)

	conn.Source = netip.MustParseAddr("192.168.0.9")
	d = p.Evaluate(rq, conn)
	res, src, reason, _ := policy.RejectCode(d.RejectReason)
	fmt.Println(d.Action, d.RuleIndex, d.RejectReason, res, src, reason)
	// Output:
	// 0 warnings
	// route ct-to-pacs-a outbound|11112||pacs-a.dicom.svc.cluster.local
	// deny -1 calling-ae-not-recognized 1 1 3
}

func ExampleLoad_errors() {
	_, _, err := policy.Load([]byte(`{"rules": [{"name": "x", "action": "route",
	  "match": {"sourceCIDRs": ["10.0.0.0/33"], "calledAETitle": ["PACS"]}}]}`))
	fmt.Println(err)
	// Output:
	// invalid policy (3 errors):
	//   rules[0].match.calledAETitle: unknown key "calledAETitle"; did you mean "calledAETitles"? (allowed: calledAETitles, callingAETitles, sourceCIDRs, peerURISANs, peerDNSSANs, peerSubjects, abstractSyntaxes, onlyAbstractSyntaxes, userIdentityUsernames)
	//   rules[0].match.sourceCIDRs[0]: "10.0.0.0/33" is not a CIDR (expected an IPv4 or IPv6 prefix such as "10.0.0.0/8" or "fd00::/8", or a bare address)
	//   rules[0]: action "route" needs "cluster" or "service"
}

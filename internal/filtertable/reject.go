package filtertable

// ClusterReject is the rejector cluster of the table's reject policies.
const ClusterReject = "outbound|11112||dicomgate-reject.dicom.svc.cluster.local"

// RejectKey is the table's rejectKey (what `openssl rand -base64 32`
// prints).
const RejectKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

// rejectPolicy: INTRUDER is rejected with calling-ae-not-recognized,
// CONGESTED with temporary-congestion, CLOSER closed; the default deny
// rejects with its computed reason; ECHOSCU to ANY-SCP is allowed.
const rejectPolicy = `{"defaultAction": "deny", "defaultRespond": "reject",
  "rejectCluster": "` + ClusterReject + `", "rejectKey": "` + RejectKey + `",
  "rules": [
    {"name": "echo-allow", "match": {"calledAETitles": ["ANY-SCP"], "callingAETitles": ["ECHOSCU"]}, "action": "allow"},
    {"name": "intruder", "match": {"callingAETitles": ["INTRUDER"]}, "action": "deny", "respond": "reject", "rejectReason": "calling-ae-not-recognized"},
    {"name": "congested", "match": {"callingAETitles": ["CONGESTED"]}, "action": "deny", "respond": "reject", "rejectReason": "temporary-congestion"},
    {"name": "no-reason", "match": {"callingAETitles": ["NOREASON"]}, "action": "deny", "respond": "reject", "rejectReason": "no-reason-given"},
    {"name": "closer", "match": {"callingAETitles": ["CLOSER"]}, "action": "deny", "respond": "close"}
  ]}`

// rejectCases: a deny with "respond": "reject" goes to the rejector cluster
// with the signed preamble before the RQ, never to the default upstream;
// without rejectCluster, in mode immediate, for protocol-level rejects and
// in dry-run the filter behaves as before (issue 13).
func rejectCases(c Captures) []Case {
	src := ConnProps{Source: "10.1.2.3:40000"}
	echo := c["echo_default"]
	echoRQ := FirstPDU(echo)
	intruder := WithAETitles(echoRQ, "", "INTRUDER")
	unknownCalled := WithAETitles(echoRQ, "NOSUCHAE", "SOMEONE")
	knownCalled := WithAETitles(echoRQ, "", "SOMEONE")
	congested := WithAETitles(echoRQ, "", "CONGESTED")
	noReason := WithAETitles(echoRQ, "", "NOREASON")
	closer := WithAETitles(echoRQ, "", "CLOSER")
	pre := func(result, source, reason byte) *Preamble {
		return &Preamble{Key: RejectKey, Result: result, Source: source, Reason: reason}
	}
	rejected := func(rule, reason string) map[string]any {
		return map[string]any{"decision": "deny", "rule": rule, "reason": "policy", "reject_reason": reason,
			"respond": "reject", "cluster": ClusterReject}
	}
	return []Case{
		{
			Name: "reject/routes_to_the_rejector_with_the_preamble",
			Source: "tcp_proxy.cc: the filter state envoy.tcp_proxy.cluster picks the rejector; context.cc Buffer::copyFrom " +
				"(start 0, length 0) prepends the preamble to the paused RQ",
			Config: rejectPolicy,
			Conns: []ConnScript{
				{Props: src, Steps: []Step{{Data: intruder}},
					Want: Want{UpstreamConnect: true, Cluster: ClusterReject, Preamble: pre(1, 1, 3), Forwarded: intruder,
						Audit: rejected("intruder", "calling-ae-not-recognized")}},
				{Props: src, Steps: []Step{{Data: congested}},
					Want: Want{UpstreamConnect: true, Cluster: ClusterReject, Preamble: pre(2, 3, 1), Forwarded: congested,
						Audit: rejected("congested", "temporary-congestion")}},
				{Props: src, Steps: []Step{{Data: noReason}},
					Want: Want{UpstreamConnect: true, Cluster: ClusterReject, Preamble: pre(1, 1, 1), Forwarded: noReason,
						Audit: rejected("no-reason", "no-reason-given")}},
				// The allowed association still reaches the default upstream,
				// untouched.
				{Props: src, Steps: []Step{{Data: echoRQ}},
					Want: Want{UpstreamConnect: true, Cluster: DefaultCluster, Forwarded: echoRQ,
						Audit: map[string]any{"decision": "allow", "rule": "echo-allow"}, AuditLacks: []string{"respond"}}},
			},
			Metrics: map[string]uint64{denied("policy"): 3, MetricRejected: 3, decisions("deny", "intruder"): 1, decisions("deny", "congested"): 1,
				decisions("deny", "no-reason"): 1, decisions("allow", "echo-allow"): 1, MetricAssociations: 4},
		},
		{
			Name:   "reject/default_deny_with_the_computed_reason",
			Source: "sdk/policy README, default reason: called-ae-not-recognized when no allow rule accepts the called AE",
			Config: rejectPolicy,
			Conns: []ConnScript{
				{Props: src, Steps: []Step{{Data: unknownCalled}},
					Want: Want{UpstreamConnect: true, Cluster: ClusterReject, Preamble: pre(1, 1, 7), Forwarded: unknownCalled,
						Audit: rejected("default", "called-ae-not-recognized")}},
				{Props: src, Steps: []Step{{Data: knownCalled}},
					Want: Want{UpstreamConnect: true, Cluster: ClusterReject, Preamble: pre(1, 1, 3), Forwarded: knownCalled,
						Audit: rejected("default", "calling-ae-not-recognized")}},
			},
			Metrics: map[string]uint64{denied("policy"): 2, MetricRejected: 2, decisions("deny", "default"): 2},
		},
		{
			Name:   "reject/rq_in_pieces_and_later_bytes_follow_the_preamble",
			Source: "the preamble is prepended once, at the decision; bytes the client sends later go to the rejector untouched",
			Config: rejectPolicy,
			Conns: []ConnScript{{Props: src, Steps: append(Chunks(intruder, 7), Step{Data: []byte{0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0}}),
				Want: Want{UpstreamConnect: true, Cluster: ClusterReject, Preamble: pre(1, 1, 3),
					Forwarded: cat(intruder, []byte{0x05, 0, 0, 0, 0, 4, 0, 0, 0, 0}),
					Audit:     rejected("intruder", "calling-ae-not-recognized")}}},
		},
		{
			Name:   "reject/respond_close_closes",
			Config: rejectPolicy,
			Conns: []ConnScript{{Props: src, Steps: []Step{{Data: closer}},
				Want: Want{Closed: true, Audit: map[string]any{"decision": "deny", "rule": "closer", "reason": "policy", "respond": "close"}}}},
			Metrics: map[string]uint64{denied("policy"): 1, MetricRejected: 0},
		},
		{
			Name:   "reject/protocol_rejects_still_close",
			Source: "only policy denies are answered with an A-ASSOCIATE-RJ; bytes that are no RQ are closed",
			Config: rejectPolicy,
			Conns: []ConnScript{{Props: src, Steps: []Step{{Data: []byte("GET / HTTP/1.1\r\n\r\n")}},
				Want: Want{Closed: true, Audit: map[string]any{"decision": "deny", "reason": "not_dicom"}, AuditLacks: []string{"respond"}}}},
			Metrics: map[string]uint64{denied("not_dicom"): 1, denied("policy"): 0},
		},
		{
			Name:   "reject/falls_back_to_close_without_reject_cluster",
			Config: `{"defaultAction": "deny", "defaultRespond": "reject", "rules": [{"name": "intruder", "match": {"callingAETitles": ["INTRUDER"]}, "action": "deny", "respond": "reject"}]}`,
			Conns: []ConnScript{
				{Props: src, Steps: []Step{{Data: intruder}},
					Want: Want{Closed: true, Audit: map[string]any{"decision": "deny", "rule": "intruder", "reason": "policy", "respond": "close"}}},
				{Props: src, Steps: []Step{{Data: unknownCalled}},
					Want: Want{Closed: true, Audit: map[string]any{"decision": "deny", "rule": "default", "reason": "policy", "respond": "close"}}},
			},
			Metrics: map[string]uint64{denied("policy"): 2, MetricRejected: 0},
		},
		{
			Name:   "reject/falls_back_to_close_in_mode_immediate",
			Source: "§0.1: in mode immediate tcp_proxy connected the default upstream at accept; the denied client's bytes never reach it",
			Config: `{"upstreamConnect": "immediate", "defaultAction": "deny", "defaultRespond": "reject",
			  "rejectCluster": "` + ClusterReject + `", "rejectKey": "` + RejectKey + `"}`,
			Conns: []ConnScript{{Props: src, Steps: []Step{{Data: intruder}},
				Want: Want{Closed: true, UpstreamConnect: true, Cluster: DefaultCluster,
					Audit: map[string]any{"decision": "deny", "reason": "policy", "respond": "close"}}}},
			Metrics: map[string]uint64{denied("policy"): 1},
		},
		{
			Name:   "reject/dry_run_lets_through_unchanged",
			Source: "dry-run: no route, no buffer change; the audit line reports the deny without a respond",
			Config: `{"mode": "dry-run", "defaultAction": "deny", "defaultRespond": "reject",
			  "rejectCluster": "` + ClusterReject + `", "rejectKey": "` + RejectKey + `"}`,
			Conns: []ConnScript{{Props: src, Steps: []Step{{Data: intruder}},
				Want: Want{UpstreamConnect: true, Cluster: DefaultCluster, Forwarded: intruder,
					Audit: map[string]any{"decision": "deny", "dry_run": true}, AuditLacks: []string{"respond"}}}},
			Metrics: map[string]uint64{MetricDryRunDenies: 1, denied("policy"): 0},
		},
		{
			Name:           "reject/invalid_reject_key_rejects_the_configuration",
			Config:         `{"rejectCluster": "` + ClusterReject + `", "rejectKey": "short"}`,
			ConfigRejected: true,
		},
	}
}

package filtertable

import "time"

// pinnedCases are behaviours the documentation promises that a mutation
// check of the suite found unpinned (issue 11): each case fails when its
// behaviour breaks.
func pinnedCases(c Captures) []Case {
	src := ConnProps{Source: "10.1.2.3:40000"}
	echoRQ := FirstPDU(c["echo_default"])
	bigRQ := FirstPDU(c["echo_ppc128_pts38"])
	find := c["find_study"]
	uid := c["uid_username"]
	twoRoutes := `{"defaultAction": "deny", "rules": [
	  {"name": "qr", "match": {"callingAETitles": ["FINDSCU"]}, "action": "route", "cluster": "` + ClusterQR + `"},
	  {"name": "pacs", "match": {"callingAETitles": ["STORESCU"]}, "action": "route", "cluster": "` + ClusterPACS + `"}]}`
	dryRun := `{"mode": "dry-run", "defaultAction": "allow", "rules": [
	  {"name": "rw", "match": {"callingAETitles": ["ECHOSCU"]}, "action": "allow", "rewriteCalledAETitle": "PACS", "rewriteCallingAETitle": "GW"}]}`
	malformed := append([]byte(nil), echoRQ...)
	malformed[76], malformed[77] = 0xff, 0xff // application context item length runs past the PDU
	return []Case{
		{
			Name: "allow/large_rq_129KB_in_one_read",
			Source: "context.cc Context::onData: the first read can hold the whole RQ; above the filter's 16 KiB " +
				"inline fetch it reads the header, then exactly the PDU",
			Config: `{"defaultAction": "deny", "rules": [{"name": "echo", "match": {"callingAETitles": ["ECHOSCU"]}, "action": "allow"}]}`,
			Conns: []ConnScript{{Props: src, Steps: []Step{{Data: bigRQ}},
				Want: Want{UpstreamConnect: true, Cluster: DefaultCluster, Forwarded: bigRQ,
					Audit: map[string]any{"decision": "allow", "rule": "echo", "presentation_contexts": 128}}}},
			Metrics: map[string]uint64{MetricAssociations: 1, denied("internal"): 0, decisions("allow", "echo"): 1},
		},
		{
			Name: "timeout/deadline_runs_from_accept_not_from_the_first_byte",
			Source: "the inspect deadline starts in proxy_on_new_connection, which Envoy calls at accept " +
				"(before the TLS handshake); a client that sends late gets less time, never more",
			Config: policy(`, "inspectTimeoutMs": 1000`),
			Conns: []ConnScript{{Props: src, Steps: []Step{
				{Advance: 700 * time.Millisecond, Check: &Want{}},
				{Data: echoRQ[:10], Check: &Want{}},
				{Advance: 400 * time.Millisecond},
			}, Want: Want{Closed: true, Audit: map[string]any{"decision": "deny", "reason": "timeout"}}}},
			Metrics: map[string]uint64{denied("timeout"): 1, MetricAssociations: 1},
		},
		{
			Name: "timeout/idle_client_after_data_is_not_blamed_on_early_data",
			Source: "a connection that sent nothing, on a listener whose earlier connections did send data: early data " +
				"works, so the client is idle (a probe): counted and audited as timeout, logged at debug only",
			Config: policy(`, "inspectTimeoutMs": 1000`),
			Conns: []ConnScript{
				{Props: src, Steps: []Step{{Data: echoRQ}},
					Want: Want{UpstreamConnect: true, Cluster: DefaultCluster, Forwarded: echoRQ, Audit: map[string]any{"decision": "allow"}}},
				{Props: src, Steps: []Step{{Advance: 1200 * time.Millisecond}},
					Want: Want{Closed: true, Audit: map[string]any{"decision": "deny", "reason": "timeout"}}},
			},
			Metrics:     map[string]uint64{denied("timeout"): 1, MetricAssociations: 2},
			NoErrorLogs: []string{"max_early_data_bytes", "inspectTimeoutMs"},
		},
		{
			Name:   "route/two_rules_to_two_clusters",
			Source: "tcp_proxy.cc: the filter state envoy.tcp_proxy.cluster is per connection; each rule names its own cluster",
			Config: twoRoutes,
			Conns: []ConnScript{
				{Props: src, Steps: []Step{{Data: find}},
					Want: Want{UpstreamConnect: true, Cluster: ClusterQR, Forwarded: find, Audit: map[string]any{"decision": "route", "rule": "qr", "cluster": ClusterQR}}},
				{Props: src, Steps: []Step{{Data: uid}},
					Want: Want{UpstreamConnect: true, Cluster: ClusterPACS, Forwarded: uid, Audit: map[string]any{"decision": "route", "rule": "pacs", "cluster": ClusterPACS}}},
				{Props: src, Steps: []Step{{Data: find}},
					Want: Want{UpstreamConnect: true, Cluster: ClusterQR, Forwarded: find, Audit: map[string]any{"decision": "route", "rule": "qr", "cluster": ClusterQR}}},
			},
			Metrics: map[string]uint64{decisions("route", "qr"): 2, decisions("route", "pacs"): 1},
		},
		{
			Name:   "dry_run/protocol_rejects_still_apply",
			Source: "dry-run reports policy decisions only; bytes that cannot be an A-ASSOCIATE-RQ are closed in every mode",
			Config: dryRun,
			Conns: []ConnScript{
				{Props: src, Steps: []Step{{Data: []byte("GET / HTTP/1.1\r\n\r\n")}},
					Want: Want{Closed: true, Audit: map[string]any{"decision": "deny", "reason": "not_dicom"}}},
				{Props: src, Steps: []Step{{Data: malformed}},
					Want: Want{Closed: true, Audit: map[string]any{"decision": "deny", "reason": "malformed"}}},
			},
			Metrics: map[string]uint64{denied("not_dicom"): 1, denied("malformed"): 1, MetricDryRunDenies: 0},
		},
		{
			Name:   "dry_run/rewrite_is_neither_done_nor_reported",
			Source: "dry-run: no buffer change (context.cc Buffer::copyFrom never called), and the audit line claims none",
			Config: dryRun,
			Conns: []ConnScript{{Props: src, Steps: []Step{{Data: echoRQ}},
				Want: Want{UpstreamConnect: true, Cluster: DefaultCluster, Forwarded: echoRQ,
					Audit:      map[string]any{"decision": "allow", "rule": "rw", "dry_run": true},
					AuditLacks: []string{"rewrite_called_ae", "rewrite_calling_ae"}}}},
		},
	}
}

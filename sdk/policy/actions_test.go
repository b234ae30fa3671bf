package policy

import "testing"

func TestPolicyActionsAccessor(t *testing.T) {
	rules, def := mustLoad(t, `{"defaultAction": "allow", "rules": [
	  {"name": "a", "action": "deny"},
	  {"name": "b", "action": "route", "cluster": "c"},
	  {"name": "c", "action": "allow"}]}`).Actions()
	if len(rules) != 3 || rules[0] != ActionDeny || rules[1] != ActionRoute || rules[2] != ActionAllow || def != ActionAllow {
		t.Fatalf("Actions() = %v, %v", rules, def)
	}
	if _, def := mustLoad(t, `{}`).Actions(); def != ActionDeny {
		t.Fatalf("default action of {} = %v; want deny", def)
	}
}

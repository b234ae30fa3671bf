package policy

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPolicyActionsAccessor(t *testing.T) {
	rules, def := mustLoad(t, `{"defaultAction": "allow", "rules": [
	  {"name": "a", "action": "deny"},
	  {"name": "b", "action": "route", "cluster": "c"},
	  {"name": "c", "action": "allow"}]}`).Actions()
	require.Equal(t, []Action{ActionDeny, ActionRoute, ActionAllow}, rules, "Actions() rules (default %v)", def)
	require.Equal(t, ActionAllow, def, "Actions() default (rules %v)", rules)
	_, def = mustLoad(t, `{}`).Actions()
	require.Equal(t, ActionDeny, def, "default action of {}; want deny")
}

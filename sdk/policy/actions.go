package policy

// Actions returns each rule's action, parallel to [Policy.RuleNames], and
// the default action (applied when no rule matches). The filter uses it to
// define exactly one decision counter per rule at configure time.
func (p *Policy) Actions() (rules []Action, defaultAction Action) {
	rules = make([]Action, len(p.rules))
	for i, r := range p.rules {
		rules[i] = r.action
	}
	return rules, p.defaultAction
}

package metricname

import "testing"

func TestEncodeSplitSeries(t *testing.T) {
	cases := []struct {
		base   string
		kv     []string
		name   string
		series string
	}{
		{"dicomgate_associations_total", nil, "dicomgate_associations_total", "dicomgate_associations_total"},
		{"dicomgate_decisions_total", []string{"action", "route", "rule", "ct"},
			"action=.=route;.;rule=.=ct;.;dicomgate_decisions_total",
			`dicomgate_decisions_total{action="route",rule="ct"}`},
		{"dicomgate_denied_total", []string{"reason", "x;.;y=.=z"},
			"reason=.=x_._y_._z;.;dicomgate_denied_total",
			`dicomgate_denied_total{reason="x_._y_._z"}`},
		{"m", []string{"rule", ""}, "rule=.=none;.;m", `m{rule="none"}`},
	}
	for _, c := range cases {
		got := Encode(c.base, c.kv...)
		if got != c.name {
			t.Errorf("Encode(%q, %q) = %q, want %q", c.base, c.kv, got, c.name)
		}
		base, labels := Split(got)
		if base != c.base || len(labels) != len(c.kv)/2 {
			t.Errorf("Split(%q) = %q, %v", got, base, labels)
		}
		if s := Series(got); s != c.series {
			t.Errorf("Series(%q) = %q, want %q", got, s, c.series)
		}
	}
}

func TestSplitMalformedKeepsName(t *testing.T) {
	for _, n := range []string{"a=.=b", "=.=x;.;m", "plain.name"} {
		base, labels := Split(n)
		if base != n || len(labels) != 0 {
			t.Errorf("Split(%q) = %q, %v; want name unchanged", n, base, labels)
		}
	}
}

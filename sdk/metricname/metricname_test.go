package metricname

import (
	"testing"

	"github.com/stretchr/testify/require"
)

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
		t.Run(c.base, func(t *testing.T) {
			got := Encode(c.base, c.kv...)
			require.Equal(t, c.name, got, "Encode(%q, %q)", c.base, c.kv)
			base, labels := Split(got)
			require.Equal(t, c.base, base, "Split(%q) base (labels %v)", got, labels)
			require.Len(t, labels, len(c.kv)/2, "Split(%q) labels (base %q)", got, base)
			require.Equal(t, c.series, Series(got), "Series(%q)", got)
		})
	}
}

func TestSplitMalformedKeepsName(t *testing.T) {
	for _, n := range []string{"a=.=b", "=.=x;.;m", "plain.name"} {
		t.Run(n, func(t *testing.T) {
			base, labels := Split(n)
			require.Equal(t, n, base, "Split(%q) base (labels %v); want name unchanged", n, labels)
			require.Empty(t, labels, "Split(%q) labels (base %q); want name unchanged", n, base)
		})
	}
}

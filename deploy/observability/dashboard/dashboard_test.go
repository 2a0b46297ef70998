package dashboard

import "testing"

func TestInterpolate(t *testing.T) {
	vars := map[string]string{"namespace": "moviebag", "service": "auth|movies", "serv": "x"}
	for _, c := range []struct{ in, want string }{
		{`rate(x{namespace="$namespace"}[$__rate_interval])`, `rate(x{namespace="moviebag"}[1m])`},
		{`x{service=~"${service:regex}"}[$__range]`, `x{service=~"auth|movies"}[1h]`},
		// The longer name first: $service is not $serv followed by "ice".
		{`$service $serv ${serv} $__interval`, `auth|movies x x 1m`},
	} {
		got := Interpolate(c.in, vars, "1m", "1h")
		if got != c.want {
			t.Errorf("Interpolate(%q) = %q, want %q", c.in, got, c.want)
		}
		if left := Uninterpolated(got); left != "" {
			t.Errorf("Uninterpolated(%q) = %q, want none", got, left)
		}
	}
	if left := Uninterpolated(Interpolate(`x{route=~"$route"}`, vars, "1m", "1h")); left != "$route" {
		t.Errorf("a variable without a value: Uninterpolated = %q, want $route", left)
	}
}

func TestLabelValuesQuery(t *testing.T) {
	for _, c := range []struct{ in, selector, label string }{
		{`label_values(up{job=~".+"}, namespace)`, `up{job=~".+"}`, "namespace"},
		{`label_values(namespace)`, "", "namespace"},
	} {
		sel, label, err := LabelValuesQuery(c.in)
		if err != nil || sel != c.selector || label != c.label {
			t.Errorf("LabelValuesQuery(%q) = %q, %q, %v; want %q, %q", c.in, sel, label, err, c.selector, c.label)
		}
	}
	if _, _, err := LabelValuesQuery("up"); err == nil {
		t.Error("LabelValuesQuery(up): no error")
	}
}

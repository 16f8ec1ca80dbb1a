package sloengine

import (
	"fmt"
	"strconv"
	"time"
)

// errorExpr is the PromQL for bad events over window w: a per-second rate
// for counter-based kinds, a sample count for bool_gauge. It is empty for
// raw SLIs, which only have a ratio.
func (s *SLI) errorExpr(w time.Duration) string {
	win := FormatWindow(w)
	switch s.Kind {
	case KindEvents:
		if s.ErrorQuery != "" {
			return "(" + expand(s.ErrorQuery, w) + ")"
		}
		return fmt.Sprintf("((%s) - (%s))", expand(s.TotalQuery, w), expand(s.GoodQuery, w))
	case KindLatency:
		return fmt.Sprintf("(sum(rate(%s[%s])) - sum(rate(%s[%s])))",
			sel(s.Metric+"_count", s.Selector, ""), win, sel(s.Metric+"_bucket", s.Selector, s.Le), win)
	case KindLatencyNative:
		h := fmt.Sprintf("sum(rate(%s[%s]))", sel(s.Metric, s.Selector, ""), win)
		return fmt.Sprintf("(histogram_count(%s) - histogram_fraction(0, %s, %s) * histogram_count(%s))",
			h, strconv.FormatFloat(s.Threshold, 'g', -1, 64), h, h)
	case KindBoolGauge:
		return fmt.Sprintf("(sum(count_over_time(%s[%s])) - sum(sum_over_time(%s[%s])))", s.Metric, win, s.Metric, win)
	}
	return ""
}

// badExpr is errorExpr as evaluated and exported: an events SLI whose error
// query matches no series yet (no 5xx has ever happened) counts zero errors
// rather than leaving the ratio undefined.
func (s *SLI) badExpr(w time.Duration) string {
	if s.Kind == KindEvents && s.ErrorQuery != "" {
		return "(" + s.errorExpr(w) + " or on() vector(0))"
	}
	return s.errorExpr(w)
}

// totalExpr is the PromQL for all events over window w, in errorExpr's unit.
func (s *SLI) totalExpr(w time.Duration) string {
	win := FormatWindow(w)
	switch s.Kind {
	case KindEvents:
		return "(" + expand(s.TotalQuery, w) + ")"
	case KindLatency:
		return fmt.Sprintf("(sum(rate(%s[%s])))", sel(s.Metric+"_count", s.Selector, ""), win)
	case KindLatencyNative:
		return fmt.Sprintf("(histogram_count(sum(rate(%s[%s]))))", sel(s.Metric, s.Selector, ""), win)
	case KindBoolGauge:
		return fmt.Sprintf("(sum(count_over_time(%s[%s])))", s.Metric, win)
	}
	return ""
}

// ratioExpr is the error ratio over w, exactly as the exported recording
// rule slo:sli_error:ratio_rate<w> computes it.
func (s *SLI) ratioExpr(w time.Duration) string {
	if s.Kind == KindRaw {
		return "(" + expand(s.ErrorRatioQuery, w) + ")"
	}
	return s.badExpr(w) + "\n/\n" + s.totalExpr(w)
}

// rateBased reports whether errorExpr/totalExpr are per-second rates (event
// counts are then rate x window) rather than counts.
func (s *SLI) rateBased() bool { return s.Kind != KindBoolGauge }

func sel(metric, matchers, le string) string {
	m := matchers
	if le != "" {
		if m != "" {
			m += ","
		}
		m += fmt.Sprintf("le=%q", le)
	}
	if m == "" {
		return metric
	}
	return metric + "{" + m + "}"
}

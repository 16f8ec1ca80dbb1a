package sloengine

import (
	"strings"
	"time"
)

// sentinelWindow is a window no spec uses, replaced after expansion.
const sentinelWindow = 7*time.Hour + 13*time.Minute + 17*time.Second

// RateQueries returns the PromQL of the SLI's bad and total events over
// window, which may be any PromQL duration or Grafana's $__rate_interval:
// the same expressions the engine evaluates, for dashboards. Raw SLIs have
// no event queries and return ok false.
func (s *SLI) RateQueries(window string) (bad, total string, ok bool) {
	if s.Kind == KindRaw {
		return "", "", false
	}
	r := strings.NewReplacer(FormatWindow(sentinelWindow), window)
	return r.Replace(s.badExpr(sentinelWindow)), r.Replace(s.totalExpr(sentinelWindow)), true
}

// RatioQuery returns the PromQL of the SLI's error ratio over window, as
// RateQueries does.
func (s *SLI) RatioQuery(window string) string {
	return strings.NewReplacer(FormatWindow(sentinelWindow), window).Replace(s.ratioExpr(sentinelWindow))
}

package sloengine

import (
	"errors"
	"fmt"
	"time"
)

// RetentionMargin is kept beyond the longest SLO period: the 3d window,
// and blocks that retention deletes whole.
const RetentionMargin = 3 * 24 * time.Hour

// RequiredRetention is the TSDB retention that covers every SLO's period:
// the longest period (a calendar period at its longest: 31 days and an
// hour, a quarter 92 days and an hour) plus RetentionMargin. Zero without
// SLOs.
func RequiredRetention(slos []*SLO) time.Duration {
	var longest time.Duration
	for _, s := range slos {
		longest = max(longest, s.maxPeriod())
	}
	if longest == 0 {
		return 0
	}
	return longest + RetentionMargin
}

// ErrRetention is returned (wrapped) for an SLO whose period is longer than
// the data the TSDB keeps.
var ErrRetention = errors.New("SLO period longer than the TSDB retention")

// CheckRetention refuses every SLO whose period the retained data cannot
// cover: its budget would silently cover only the retained part after a
// restart. The error names the SLO, its period and the retention.
func CheckRetention(slos []*SLO, retention time.Duration) error {
	if retention <= 0 {
		return nil
	}
	var errs []error
	for _, s := range slos {
		if p := s.maxPeriod(); p > retention {
			name := periodName(s)
			if s.Calendar != nil {
				name += " (up to " + FormatWindow(p) + ")"
			}
			errs = append(errs, fmt.Errorf("%s:%d: SLO %s: period %s is longer than collector.tsdb.retention %s; "+
				"raise the retention to at least %s, or set slo.allow_short_retention: true to budget over the retained data only: %w",
				s.File, s.Line, s.ID, name, FormatWindow(retention), FormatWindow(p+RetentionMargin), ErrRetention))
		}
	}
	return errors.Join(errs...)
}

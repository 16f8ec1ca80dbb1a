package sloengine

import "go.yaml.in/yaml/v3"

func (l *Loader) addOpenSLO(name string, docs []*yaml.Node) {
	l.errs = append(l.errs, &SpecError{File: name, Line: docs[0].Line, Reason: "OpenSLO is not supported yet"})
}

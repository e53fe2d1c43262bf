package platform

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// A strict parser of the Prometheus text exposition format 0.0.4, used to
// check what /metrics writes without a client library. It rejects anything
// Prometheus would reject and a few things it merely tolerates (interleaved
// families, duplicate series, broken histograms).

var (
	metricNameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelNameRE  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

type sample struct {
	name   string
	labels map[string]string
	value  float64
}

type exposition struct {
	types   map[string]string // family -> type
	help    map[string]string
	samples []sample
}

// find returns the value of the one sample with name and exactly these labels.
func (e *exposition) find(name string, labels map[string]string) (float64, bool) {
	for _, s := range e.samples {
		if s.name == name && mapsEqual(s.labels, labels) {
			return s.value, true
		}
	}
	return 0, false
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func parseExposition(text string) (*exposition, error) {
	if text == "" || !strings.HasSuffix(text, "\n") {
		return nil, fmt.Errorf("exposition must be non-empty and end with a newline")
	}
	e := &exposition{types: map[string]string{}, help: map[string]string{}}
	seenSeries := map[string]bool{}
	finished := map[string]bool{} // families whose samples have ended
	current := ""

	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		lineNo := i + 1
		if strings.HasPrefix(line, "#") {
			fields := strings.SplitN(line, " ", 4)
			if len(fields) < 4 || (fields[1] != "HELP" && fields[1] != "TYPE") {
				return nil, fmt.Errorf("line %d: only # HELP and # TYPE comments are expected: %q", lineNo, line)
			}
			name := fields[2]
			if !metricNameRE.MatchString(name) {
				return nil, fmt.Errorf("line %d: bad metric name %q", lineNo, name)
			}
			if fields[1] == "HELP" {
				if _, dup := e.help[name]; dup {
					return nil, fmt.Errorf("line %d: second HELP for %s", lineNo, name)
				}
				e.help[name] = fields[3]
				continue
			}
			if _, dup := e.types[name]; dup {
				return nil, fmt.Errorf("line %d: second TYPE for %s", lineNo, name)
			}
			if finished[name] || current == name {
				return nil, fmt.Errorf("line %d: TYPE for %s after its samples", lineNo, name)
			}
			switch fields[3] {
			case "counter", "gauge", "histogram", "summary", "untyped":
			default:
				return nil, fmt.Errorf("line %d: unknown type %q", lineNo, fields[3])
			}
			e.types[name] = fields[3]
			continue
		}

		s, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", lineNo, err)
		}
		family := e.familyOf(s.name)
		if family == "" {
			return nil, fmt.Errorf("line %d: sample %s has no TYPE before it", lineNo, s.name)
		}
		if family != current {
			if finished[family] {
				return nil, fmt.Errorf("line %d: samples of %s are not contiguous", lineNo, family)
			}
			if current != "" {
				finished[current] = true
			}
			current = family
		}
		key := seriesKey(s)
		if seenSeries[key] {
			return nil, fmt.Errorf("line %d: duplicate series %s", lineNo, key)
		}
		seenSeries[key] = true
		e.samples = append(e.samples, s)
	}
	if err := e.checkHistograms(); err != nil {
		return nil, err
	}
	return e, nil
}

// familyOf maps a sample name to its declared family: histogram samples
// carry a _bucket, _sum or _count suffix.
func (e *exposition) familyOf(name string) string {
	if _, ok := e.types[name]; ok && e.types[name] != "histogram" {
		return name
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if ok && e.types[base] == "histogram" {
			return base
		}
	}
	return ""
}

func parseSample(line string) (sample, error) {
	s := sample{labels: map[string]string{}}
	nameEnd := strings.IndexAny(line, "{ ")
	if nameEnd <= 0 {
		return s, fmt.Errorf("no metric name and value in %q", line)
	}
	s.name = line[:nameEnd]
	if !metricNameRE.MatchString(s.name) {
		return s, fmt.Errorf("bad metric name %q", s.name)
	}
	rest := line[nameEnd:]
	if strings.HasPrefix(rest, "{") {
		var err error
		rest, err = parseLabels(rest[1:], s.labels)
		if err != nil {
			return s, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	if !strings.HasPrefix(rest, " ") {
		return s, fmt.Errorf("%s: want one space before the value in %q", s.name, line)
	}
	fields := strings.Split(rest[1:], " ")
	if len(fields) > 2 {
		return s, fmt.Errorf("%s: too many fields after the labels", s.name)
	}
	value, err := parseValue(fields[0])
	if err != nil {
		return s, fmt.Errorf("%s: %w", s.name, err)
	}
	s.value = value
	if len(fields) == 2 {
		if _, err := strconv.ParseInt(fields[1], 10, 64); err != nil {
			return s, fmt.Errorf("%s: bad timestamp %q", s.name, fields[1])
		}
	}
	return s, nil
}

// parseLabels reads `name="value",...}` and returns what follows the brace.
func parseLabels(text string, into map[string]string) (string, error) {
	for {
		if strings.HasPrefix(text, "}") {
			return text[1:], nil
		}
		eq := strings.IndexByte(text, '=')
		if eq <= 0 {
			return "", fmt.Errorf("label without '=' in %q", text)
		}
		name := text[:eq]
		if !labelNameRE.MatchString(name) || strings.HasPrefix(name, "__") {
			return "", fmt.Errorf("bad label name %q", name)
		}
		if _, dup := into[name]; dup {
			return "", fmt.Errorf("label %q given twice", name)
		}
		text = text[eq+1:]
		if !strings.HasPrefix(text, `"`) {
			return "", fmt.Errorf("label %s value is not quoted", name)
		}
		var value strings.Builder
		i := 1
		for ; i < len(text) && text[i] != '"'; i++ {
			c := text[i]
			if c == '\n' {
				return "", fmt.Errorf("raw newline in label %s", name)
			}
			if c != '\\' {
				value.WriteByte(c)
				continue
			}
			i++
			if i == len(text) {
				return "", fmt.Errorf("unfinished escape in label %s", name)
			}
			switch text[i] {
			case '\\':
				value.WriteByte('\\')
			case '"':
				value.WriteByte('"')
			case 'n':
				value.WriteByte('\n')
			default:
				return "", fmt.Errorf("unknown escape \\%c in label %s", text[i], name)
			}
		}
		if i == len(text) {
			return "", fmt.Errorf("unterminated value of label %s", name)
		}
		into[name] = value.String()
		text = text[i+1:]
		switch {
		case strings.HasPrefix(text, ","):
			text = text[1:]
		case strings.HasPrefix(text, "}"):
		default:
			return "", fmt.Errorf("want ',' or '}' after label %s", name)
		}
	}
}

func parseValue(s string) (float64, error) {
	switch s {
	case "+Inf":
		return math.Inf(1), nil
	case "-Inf":
		return math.Inf(-1), nil
	case "NaN":
		return math.NaN(), nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || strings.ContainsAny(s, "_xXpP") {
		return 0, fmt.Errorf("bad value %q", s)
	}
	return v, nil
}

func seriesKey(s sample) string {
	keys := make([]string, 0, len(s.labels))
	for k := range s.labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.Quote(s.labels[k])
	}
	return s.name + "{" + strings.Join(parts, ",") + "}"
}

// checkHistograms checks every histogram series: buckets in increasing le
// order, cumulative counts, a +Inf bucket equal to _count, and a _sum.
func (e *exposition) checkHistograms() error {
	for family, typ := range e.types {
		if typ != "histogram" {
			continue
		}
		type series struct {
			les    []float64
			counts []float64
			count  *float64
			sum    bool
		}
		bySeries := map[string]*series{}
		get := func(labels map[string]string) *series {
			rest := map[string]string{}
			for k, v := range labels {
				if k != "le" {
					rest[k] = v
				}
			}
			key := seriesKey(sample{labels: rest})
			if bySeries[key] == nil {
				bySeries[key] = &series{}
			}
			return bySeries[key]
		}
		for _, s := range e.samples {
			switch s.name {
			case family + "_bucket":
				raw, ok := s.labels["le"]
				if !ok {
					return fmt.Errorf("%s has no le label", s.name)
				}
				le, err := parseValue(raw)
				if err != nil {
					return fmt.Errorf("%s: le: %w", s.name, err)
				}
				ser := get(s.labels)
				ser.les = append(ser.les, le)
				ser.counts = append(ser.counts, s.value)
			case family + "_count":
				if _, ok := s.labels["le"]; ok {
					return fmt.Errorf("%s must not have an le label", s.name)
				}
				v := s.value
				get(s.labels).count = &v
			case family + "_sum":
				get(s.labels).sum = true
			}
		}
		for key, ser := range bySeries {
			if !slices.IsSorted(ser.les) {
				return fmt.Errorf("%s%s: buckets not in increasing le order", family, key)
			}
			if len(slices.Compact(slices.Clone(ser.les))) != len(ser.les) {
				return fmt.Errorf("%s%s: duplicate le", family, key)
			}
			if !slices.IsSorted(ser.counts) {
				return fmt.Errorf("%s%s: bucket counts are not cumulative", family, key)
			}
			if len(ser.les) == 0 || !math.IsInf(ser.les[len(ser.les)-1], 1) {
				return fmt.Errorf("%s%s: no +Inf bucket", family, key)
			}
			if ser.count == nil || *ser.count != ser.counts[len(ser.counts)-1] {
				return fmt.Errorf("%s%s: _count missing or not equal to the +Inf bucket", family, key)
			}
			if !ser.sum {
				return fmt.Errorf("%s%s: _sum missing", family, key)
			}
		}
	}
	return nil
}

package stack

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Matches reports whether an EventBridge event pattern matches an event, for
// the subset of the pattern language template.yaml uses: exact strings,
// {"prefix": ...}, {"exists": bool}, {"anything-but": ...} and $or. As in
// EventBridge, arrays in the event are flattened: a field inside an array of
// objects has the values of all elements, and a filter list matches when
// any value matches any filter. exists tests leaf values only.
func Matches(pattern, event map[string]any) (bool, error) {
	for k, v := range pattern {
		if k == "$or" {
			alts, ok := v.([]any)
			if !ok {
				return false, fmt.Errorf("$or is not a list: %v", v)
			}
			matched := false
			for _, alt := range alts {
				m, ok := alt.(map[string]any)
				if !ok {
					return false, fmt.Errorf("$or alternative is not an object: %v", alt)
				}
				hit, err := Matches(m, event)
				if err != nil {
					return false, err
				}
				matched = matched || hit
			}
			if !matched {
				return false, nil
			}
			continue
		}
		switch p := v.(type) {
		case map[string]any:
			// Descend: the event's field may be an object or an array of them.
			var subs []map[string]any
			for _, e := range flatten(event[k]) {
				if m, ok := e.(map[string]any); ok {
					subs = append(subs, m)
				}
			}
			if len(subs) == 0 {
				subs = []map[string]any{{}} // absent: only exists:false can match below
			}
			merged := mergeObjects(subs)
			hit, err := Matches(p, merged)
			if err != nil || !hit {
				return false, err
			}
		case []any:
			var leaves []any
			for _, e := range flatten(event[k]) {
				switch e.(type) {
				case map[string]any, nil:
				default:
					leaves = append(leaves, e)
				}
			}
			hit, err := anyFilter(p, leaves)
			if err != nil || !hit {
				return false, err
			}
		default:
			return false, fmt.Errorf("pattern field %s is %v: want an object or a list of filters", k, v)
		}
	}
	return true, nil
}

// mergeObjects merges the objects of an array into one whose fields hold all
// elements' values, which is how EventBridge flattens arrays of objects.
func mergeObjects(objs []map[string]any) map[string]any {
	if len(objs) == 1 {
		return objs[0]
	}
	out := map[string]any{}
	for _, o := range objs {
		for k, v := range o {
			prev, _ := out[k].([]any)
			out[k] = append(prev, flatten(v)...)
		}
	}
	return out
}

func flatten(v any) []any {
	switch l := v.(type) {
	case nil:
		return nil
	case []any:
		var out []any
		for _, e := range l {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []any{v}
}

func anyFilter(filters, leaves []any) (bool, error) {
	for _, f := range filters {
		switch fv := f.(type) {
		case map[string]any:
			for name, arg := range fv {
				switch name {
				case "exists":
					if (len(leaves) > 0) == arg.(bool) {
						return true, nil
					}
				case "prefix":
					for _, l := range leaves {
						if s, ok := l.(string); ok && strings.HasPrefix(s, fmt.Sprint(arg)) {
							return true, nil
						}
					}
				case "anything-but":
					excluded := flatten(arg)
					for _, l := range leaves {
						if !containsJSON(excluded, l) {
							return true, nil
						}
					}
				default:
					return false, fmt.Errorf("filter %s is not implemented by internal/testing/stack", name)
				}
			}
		default:
			if containsJSON(leaves, f) {
				return true, nil
			}
		}
	}
	return false, nil
}

func containsJSON(vals []any, x any) bool {
	xb, _ := json.Marshal(x)
	for _, v := range vals {
		vb, _ := json.Marshal(v)
		if string(vb) == string(xb) {
			return true
		}
	}
	return false
}

// Package glob matches the wildcards AWS patterns use: * for any run of
// characters (slashes included, unlike path.Match) and ? for one; every
// other character, [ and ] among them, stands for itself. IAM policies
// (the test evaluator) and the configuration's AMI name patterns both use it.
package glob

// Match reports whether s matches pattern.
func Match(pattern, s string) bool {
	p, r := []rune(pattern), []rune(s)
	// Iterative matching with backtracking to the last star.
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(r) {
		switch {
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(p) && (p[pi] == '?' || p[pi] == r[si]):
			pi++
			si++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

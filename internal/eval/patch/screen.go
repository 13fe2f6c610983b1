package patch

import (
	"fmt"
	"strings"
)

// screenDiff refuses a candidate patch that would create or change
// anything but regular files: a git header giving a new file (or a mode
// change) any mode other than 100644 or 100755 — a symbolic link (120000),
// a submodule (160000) — or an index line on a link or submodule. It
// returns why, or "" when the patch may be applied. What the apply tools
// create anyway is caught after applying (workspace.specialFiles).
func screenDiff(diff string) string {
	cur := ""
	for _, line := range strings.Split(diff, "\n") {
		line = strings.TrimRight(line, "\r")
		if strings.HasPrefix(line, "diff --git ") {
			cur = diffGitPath(line)
			continue
		}
		var mode string
		for _, h := range []string{"new file mode ", "new mode "} {
			if m, ok := strings.CutPrefix(line, h); ok {
				mode = strings.TrimSpace(m)
				if mode != "100644" && mode != "100755" {
					return fmt.Sprintf("%s gives %s mode %s (%s); only regular files may be added", quoteLimit(cur), strings.TrimSpace(h[:len(h)-6]), quoteLimit(mode), modeName(mode))
				}
			}
		}
		if rest, ok := strings.CutPrefix(line, "index "); ok {
			if f := strings.Fields(rest); len(f) == 2 && (f[1] == "120000" || f[1] == "160000") {
				return fmt.Sprintf("%s changes a %s; only regular files may be changed", quoteLimit(cur), modeName(f[1]))
			}
		}
	}
	return ""
}

// modeName names a git file mode.
func modeName(mode string) string {
	switch mode {
	case "120000":
		return "symbolic link"
	case "160000":
		return "submodule"
	case "040000":
		return "directory"
	}
	return "not a regular file mode"
}

// quoteLimit quotes s for a verdict reason, cut to a readable length.
func quoteLimit(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return fmt.Sprintf("%q", s)
}

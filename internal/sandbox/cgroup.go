package sandbox

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cgroup is one per-run control group: a memory and a pids controller
// directory (cgroup v1) or one unified directory (cgroup v2). A nil
// *cgroup means no cgroup could be created; limits then fall back to
// rlimits.
type cgroup struct {
	v2     bool
	memory string // directory holding memory.* files, "" if none
	pids   string // directory holding pids.* files, "" if none
}

// newCgroup creates a fresh cgroup below the caller's own cgroup for each
// controller it can write to, and applies the limits. It returns nil (and
// no error) when the kernel or the caller's privileges offer none.
func newCgroup(memBytes int64, pids int) *cgroup {
	if memBytes <= 0 && pids <= 0 {
		return nil
	}
	name := cgroupPrefix + strconv.Itoa(os.Getpid()) + "-" + randomHex(8)
	mounts := cgroupMounts()
	own := ownCgroups()
	cg := &cgroup{}
	if root, ok := mounts["unified2"]; ok && mounts["memory"] == "" && mounts["pids"] == "" {
		// Pure cgroup v2: one directory; controllers must be enabled in
		// the parent's subtree_control, which the no-internal-process
		// rule usually forbids below a non-root cgroup we live in.
		parent := filepath.Join(root, own[""])
		dir := filepath.Join(parent, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil
		}
		_ = os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte("+memory +pids"), 0o644)
		cg.v2 = true
		if memBytes > 0 && writeFile(filepath.Join(dir, "memory.max"), strconv.FormatInt(memBytes, 10)) == nil {
			_ = writeFile(filepath.Join(dir, "memory.swap.max"), "0")
			cg.memory = dir
		}
		if pids > 0 && writeFile(filepath.Join(dir, "pids.max"), strconv.Itoa(pids)) == nil {
			cg.pids = dir
		}
		if cg.memory == "" && cg.pids == "" {
			_ = os.Remove(dir)
			return nil
		}
		return cg
	}
	if root := mounts["memory"]; root != "" && memBytes > 0 {
		dir := filepath.Join(root, own["memory"], name)
		if os.Mkdir(dir, 0o755) == nil {
			if writeFile(filepath.Join(dir, "memory.limit_in_bytes"), strconv.FormatInt(memBytes, 10)) == nil {
				// Swap counts too when the kernel accounts it.
				_ = writeFile(filepath.Join(dir, "memory.memsw.limit_in_bytes"), strconv.FormatInt(memBytes, 10))
				cg.memory = dir
			} else {
				_ = os.Remove(dir)
			}
		}
	}
	if root := mounts["pids"]; root != "" && pids > 0 {
		dir := filepath.Join(root, own["pids"], name)
		if os.Mkdir(dir, 0o755) == nil {
			if writeFile(filepath.Join(dir, "pids.max"), strconv.Itoa(pids)) == nil {
				cg.pids = dir
			} else {
				_ = os.Remove(dir)
			}
		}
	}
	if cg.memory == "" && cg.pids == "" {
		return nil
	}
	return cg
}

// cgroupPrefix starts the name of every per-run cgroup; the owner's pid
// follows it ("crucible-sandbox-<pid>-<random>"), so Sweep can tell a
// cgroup left by a killed process from one a live process still uses.
const cgroupPrefix = "crucible-sandbox-"

// Sweep removes the per-run cgroups (below this process's own cgroups)
// whose owner process is gone, as a process killed with SIGKILL leaves
// them behind; it kills any process left in them first. Cgroups of live
// processes, this one included, are left alone. It returns how many it
// removed.
func Sweep() (int, error) {
	mounts, own := cgroupMounts(), ownCgroups()
	var parents []string
	if root, ok := mounts["unified2"]; ok && mounts["memory"] == "" && mounts["pids"] == "" {
		parents = append(parents, filepath.Join(root, own[""]))
	}
	for _, c := range []string{"memory", "pids"} {
		if root := mounts[c]; root != "" {
			parents = append(parents, filepath.Join(root, own[c]))
		}
	}
	removed := 0
	var errs []error
	for _, parent := range parents {
		entries, err := os.ReadDir(parent)
		if err != nil {
			continue // no such controller for us: nothing of ours to sweep
		}
		for _, e := range entries {
			pid, ok := ownerPid(e.Name())
			if !e.IsDir() || !ok || processAlive(pid) {
				continue
			}
			dir := filepath.Join(parent, e.Name())
			cg := &cgroup{memory: dir}
			cg.remove()
			if _, err := os.Stat(dir); err == nil {
				errs = append(errs, fmt.Errorf("sandbox: sweep cgroup %s: still busy", dir))
				continue
			}
			removed++
		}
	}
	return removed, errors.Join(errs...)
}

// ownerPid parses the owner pid out of a per-run cgroup name.
func ownerPid(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, cgroupPrefix)
	if !ok {
		return 0, false
	}
	pidText, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(pidText)
	return pid, err == nil && pid > 0
}

// processAlive reports whether pid names a running process (a zombie
// counts as gone: it runs nothing and will never clean up).
func processAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // no /proc: trust kill(2)
	}
	// "pid (comm) S ...": the state follows the last ')'.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'Z' {
		return false
	}
	return true
}

// procFiles lists the cgroup.procs files a process must be written to.
func (cg *cgroup) procFiles() []string {
	if cg == nil {
		return nil
	}
	var out []string
	if cg.memory != "" {
		out = append(out, filepath.Join(cg.memory, "cgroup.procs"))
	}
	if cg.pids != "" && cg.pids != cg.memory {
		out = append(out, filepath.Join(cg.pids, "cgroup.procs"))
	}
	return out
}

// describe names the enforced limits for Result.Limits.
func (cg *cgroup) describe() string {
	if cg == nil {
		return ""
	}
	v := "cgroup v1"
	if cg.v2 {
		v = "cgroup v2"
	}
	var parts []string
	if cg.memory != "" {
		parts = append(parts, v+" memory")
	}
	if cg.pids != "" {
		parts = append(parts, v+" pids")
	}
	return strings.Join(parts, ", ")
}

// killAll sends SIGKILL to every process still in the cgroup.
func (cg *cgroup) killAll() {
	for _, f := range cg.procFiles() {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(line); err == nil && pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

// oomKilled reports whether the kernel OOM-killed a process of the cgroup.
func (cg *cgroup) oomKilled() bool {
	if cg == nil || cg.memory == "" {
		return false
	}
	name := "memory.oom_control"
	if cg.v2 {
		name = "memory.events"
	}
	return counter(filepath.Join(cg.memory, name), "oom_kill") > 0
}

// forksRefused reports how many forks the pids limit refused.
func (cg *cgroup) forksRefused() int64 {
	if cg == nil || cg.pids == "" {
		return 0
	}
	return counter(filepath.Join(cg.pids, "pids.events"), "max")
}

// remove kills what is left and removes the cgroup directories.
func (cg *cgroup) remove() {
	if cg == nil {
		return
	}
	for _, dir := range []string{cg.memory, cg.pids} {
		if dir == "" {
			continue
		}
		for i := 0; i < 50; i++ {
			cg.killAll()
			err := os.Remove(dir)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// counter reads "key value" lines and returns value for key (0 if absent).
func counter(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == key {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

// cgroupMounts maps controller name ("memory", "pids") to its v1 mount
// point, and "unified2" to the cgroup2 mount point.
func cgroupMounts() map[string]string {
	out := map[string]string{}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options ... - fstype source superopts
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, x := range fields {
			if x == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+3 >= len(fields) || len(fields) < 5 {
			continue
		}
		mnt, fstype, super := fields[4], fields[sep+1], fields[sep+3]
		switch fstype {
		case "cgroup2":
			out["unified2"] = mnt
		case "cgroup":
			for _, o := range strings.Split(super, ",") {
				if o == "memory" || o == "pids" {
					out[o] = mnt
				}
			}
		}
	}
	return out
}

// ownCgroups maps controller name to this process's cgroup path ("" key:
// the v2 path).
func ownCgroups() map[string]string {
	out := map[string]string{}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return out
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out
}

func writeFile(path, s string) error {
	return os.WriteFile(path, []byte(s), 0o644)
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}

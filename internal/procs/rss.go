package procs

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Memory is the memory of a process tree. RSS counts pages shared between
// processes (the flotilla binary's code) once per process; PSS divides them
// among the sharers, so PSS sums to what the tree really uses.
type Memory struct {
	RSS, PSS int64 // bytes
	// FilePSS is the part of PSS in mapped files: the binary's code and,
	// in a hub, etcd's database, which bbolt reads through a mapping.
	FilePSS int64
}

// TreeMemory returns the memory of pid and all its descendants.
func TreeMemory(pid int) (Memory, error) {
	total, err := memory(pid)
	if err != nil {
		return total, err
	}
	for _, child := range children(pid) {
		if m, err := TreeMemory(child); err == nil {
			total.RSS += m.RSS
			total.PSS += m.PSS
			total.FilePSS += m.FilePSS
		}
	}
	return total, nil
}

// ProcessMemory returns the memory of pid alone.
func ProcessMemory(pid int) (Memory, error) { return memory(pid) }

func memory(pid int) (Memory, error) {
	var m Memory
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return m, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			continue
		}
		switch fields[0] {
		case "Rss:":
			m.RSS = kb * 1024
		case "Pss:":
			m.PSS = kb * 1024
		case "Pss_File:":
			m.FilePSS = kb * 1024
		}
	}
	return m, sc.Err()
}

func children(pid int) []int {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	var out []int
	for _, t := range tasks {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", pid, t.Name()))
		for _, f := range strings.Fields(string(data)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// Command fakeserver stands in for a model server in the launcher's tests:
// it serves GET /v1/models and POST /v1/chat/completions on 127.0.0.1:PORT
// and records each start (pid, working directory, name) in a log file.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	port := flag.String("port", "", "port")
	name := flag.String("name", "", "served model name")
	mode := flag.String("mode", "ok", "ok (lists name), never (lists another name), stubborn (ok, ignores SIGTERM), crash (exits 1 before listening)")
	spew := flag.Int("spew", 0, "write this many MiB of log lines to stderr before listening, then a last line with marker-end-9c1d")
	starts := flag.String("starts", "", "append one line per start: pid cwd name")
	requests := flag.String("requests", "", "append one line per request received: METHOD PATH")
	child := flag.String("child", "", "start a child `sleep 300` in the group and write its pid here")
	version := flag.Bool("version", false, "print the version")
	flag.Parse()
	if *version {
		fmt.Println("fakeserver 1.2.3")
		return
	}
	if *mode == "stubborn" {
		signal.Ignore(syscall.SIGTERM) // inherited by the child
	}
	if *starts != "" {
		cwd, _ := os.Getwd()
		f, err := os.OpenFile(*starts, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			panic(err)
		}
		fmt.Fprintf(f, "%d %s %s\n", os.Getpid(), cwd, *name)
		f.Close()
	}
	if *child != "" {
		c := exec.Command("sleep", "300")
		if err := c.Start(); err != nil {
			panic(err)
		}
		if err := os.WriteFile(*child, fmt.Appendf(nil, "%d", c.Process.Pid), 0o644); err != nil {
			panic(err)
		}
	}
	fmt.Fprintln(os.Stderr, "fakeserver: loading weights for", *name)
	if *spew > 0 {
		line := []byte(strings.Repeat("fakeserver: tensor shard loaded, nothing to see ", 22)[:1023] + "\n") // 1 KiB
		for range *spew << 10 {
			if _, err := os.Stderr.Write(line); err != nil {
				os.Exit(3)
			}
		}
		fmt.Fprintln(os.Stderr, "fakeserver: done loading (marker-end-9c1d)")
	}
	if *mode == "crash" {
		fmt.Fprintln(os.Stderr, "fakeserver: segmentation fault (marker-crash-51e0)")
		os.Exit(1)
	}
	listed := *name
	if *mode == "never" {
		listed = "not-" + *name
		fmt.Fprintln(os.Stderr, "fakeserver: CUDA out of memory (marker-7f3a)")
	}
	http.HandleFunc("GET /v1/models", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": []map[string]string{{"id": listed, "object": "model"}}})
	})
	http.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"choices": []map[string]any{{"message": map[string]string{"role": "assistant", "content": "hello from " + *name}}}})
	})
	var handler http.Handler = http.DefaultServeMux
	if *requests != "" {
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f, err := os.OpenFile(*requests, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				panic(err)
			}
			fmt.Fprintf(f, "%s %s\n", r.Method, r.URL.Path)
			f.Close()
			http.DefaultServeMux.ServeHTTP(w, r)
		})
	}
	if err := http.ListenAndServe("127.0.0.1:"+*port, handler); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"

	"crucible/internal/inference"
	"crucible/internal/inference/respcache"
)

// cacheFlags choose the response cache of a local evaluation.
type cacheFlags struct {
	dir *string
	off *bool
}

func addCacheFlags(fs *flag.FlagSet) cacheFlags {
	return cacheFlags{
		dir: fs.String("cache-dir", "", "keep the model's answers here, keyed by server URL, model and request, so a re-run\n"+
			"(or a run resumed after a crash) sends only what is unanswered (default: the user cache dir's crucible/responses)"),
		off: fs.Bool("no-cache", false, "send every request to the model, reading and writing no cache"),
	}
}

// localClient is the HTTP client of one local evaluation: through the
// response cache unless --no-cache.
type localClient struct {
	http  *http.Client
	cache *respcache.Cache // nil with --no-cache
}

func (f cacheFlags) open() (*localClient, error) {
	tr := inference.NewTransport()
	if *f.off {
		return &localClient{http: &http.Client{Transport: tr}}, nil
	}
	dir := *f.dir
	if dir == "" {
		var err error
		if dir, err = respcache.DefaultDir(); err != nil {
			return nil, err
		}
	}
	c, err := respcache.Open(dir, respcache.Options{})
	if err != nil {
		return nil, err
	}
	return &localClient{http: &http.Client{Transport: c.Transport(tr)}, cache: c}, nil
}

// progress is the progress line of a run on a terminal, nil elsewhere.
func (l *localClient) progress(stderr io.Writer) func(done, total int) {
	if !isTerminal(stderr) {
		return nil
	}
	return func(done, total int) {
		fmt.Fprintf(stderr, "\r%s %d/%d", progressBar(done, total, 30), done, total)
		if l.cache != nil {
			hits, _ := l.cache.Stats()
			fmt.Fprintf(stderr, " (%d requests from cache)", hits)
		}
		if done == total {
			fmt.Fprintln(stderr)
		}
	}
}

// close reports how many requests the cache answered and closes it.
func (l *localClient) close(stderr io.Writer) error {
	if l.cache == nil {
		return nil
	}
	hits, total := l.cache.Stats()
	fmt.Fprintf(stderr, "%d of %d requests from cache (%s)\n", hits, total, l.cache.Path())
	return l.cache.Close()
}

// Command import measures a dataset import: storing a competition with N
// items (store.CreateCompetition, the one transaction every competition is
// created in, whatever door it comes through) against its reference, the
// database's limit for the same rows: a plain loop of the same batched
// INSERT (multi-row on SQLite, an unnest of a text array on PostgreSQL) in
// one transaction into a bare table with the same columns and primary key
// (no foreign key, no competition row). It runs on a fresh SQLite file, or
// with -postgres on a fresh PostgreSQL database it creates on that server
// and drops at the end; alternates -rounds imports of each and prints the
// median items/s of each and their ratio (target: >= 100,000 items/s).
//
//	go run ./bench/import [-items 100000] [-rounds 3]
//	go run ./bench/import -items 1000000 -postgres 'postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable'
//
// Items are multiple-choice rows of about 200 bytes, as in the SIQA sample.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"crucible/bench/internal/benchdb"
	"crucible/internal/competition"
	"crucible/internal/eval/mcq"
	"crucible/internal/store"
)

// batch is the reference's rows per statement, the store's batch size.
const batch = 5000

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "import:", err)
		os.Exit(1)
	}
}

func run() error {
	postgres := flag.String("postgres", "", "PostgreSQL server URL: run on a fresh database created there (default: a fresh SQLite file)")
	n := flag.Int("items", 100_000, "items per import (1000000 for the issue's figure)")
	rounds := flag.Int("rounds", 3, "alternating rounds of import and reference")
	flag.Parse()
	if *n < 1 || *rounds < 1 {
		return errors.New("-items and -rounds must be positive")
	}
	ctx := context.Background()
	url, drop, err := benchdb.Fresh(ctx, *postgres, "import")
	if err != nil {
		return err
	}
	defer drop()
	db, err := store.Open(ctx, url)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.SQL().ExecContext(ctx, `CREATE TABLE import_reference (competition_id TEXT NOT NULL,
		idx INTEGER NOT NULL, payload TEXT NOT NULL, PRIMARY KEY (competition_id, idx))`); err != nil {
		return err
	}
	items := rows(*n)
	var imp, ref []float64
	for r := 0; r < *rounds; r++ {
		id := store.NewID("c")
		start := time.Now()
		c := competition.Competition{ID: id, Kind: mcq.Name, Title: "import", Config: json.RawMessage(`{}`),
			DatasetName: "bench", DatasetDigest: "bench", CreatedBy: "bench", CreatedAt: start}
		if err := db.CreateCompetition(ctx, c, items); err != nil {
			return err
		}
		imp = append(imp, float64(*n)/time.Since(start).Seconds())
		if err := readBack(ctx, db, id, items); err != nil {
			return err
		}
		start = time.Now()
		if err := reference(ctx, db, id, items); err != nil {
			return err
		}
		ref = append(ref, float64(*n)/time.Since(start).Seconds())
	}
	i, f := median(imp), median(ref)
	fmt.Printf("database %s, %d items of ~%d bytes, %d rounds, medians\n", db.Dialect(), *n, len(items[0]), *rounds)
	fmt.Printf("import     %10.0f items/s\n", i)
	fmt.Printf("reference  %10.0f items/s\n", f)
	fmt.Printf("ratio import/reference %.3f; import %.0f items/s (target >= 100000)\n", i/f, i)
	return nil
}

// rows returns n distinct multiple-choice items.
func rows(n int) []json.RawMessage {
	out := make([]json.RawMessage, n)
	for i := range out {
		out[i] = json.RawMessage(fmt.Sprintf(`{"id":"q%d","context":"Tracy didn't go home that evening and resisted Riley's attacks.",`+
			`"question":"What does Tracy need to do before this?","choices":["make a new plan","go home","find somewhere to go"],"answer":%d}`, i, i%3))
	}
	return out
}

// readBack checks the import stored every item, in order: a benchmark of
// an import that loses rows would measure nothing.
func readBack(ctx context.Context, db *store.DB, id string, want []json.RawMessage) error {
	got, err := db.CompetitionItems(ctx, id)
	if err != nil {
		return err
	}
	if len(got) != len(want) || string(got[len(got)-1]) != string(want[len(want)-1]) {
		return fmt.Errorf("read back %d items, imported %d", len(got), len(want))
	}
	return nil
}

// reference inserts items into the bare table with the same batched
// statement the store uses, prepared once for full batches as the store
// does, in one transaction.
func reference(ctx context.Context, db *store.DB, id string, items []json.RawMessage) error {
	tx, err := db.SQL().BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	full, err := tx.PrepareContext(ctx, referenceInsert(db.Dialect(), batch))
	if err != nil {
		return err
	}
	defer full.Close()
	for start := 0; start < len(items); start += batch {
		part := items[start:min(start+batch, len(items))]
		stmt := full
		if len(part) < batch {
			if stmt, err = tx.PrepareContext(ctx, referenceInsert(db.Dialect(), len(part))); err != nil {
				return err
			}
			defer stmt.Close()
		}
		if _, err := stmt.ExecContext(ctx, referenceArgs(db.Dialect(), id, start, part)...); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// referenceInsert is the store's statement for n rows, into the bare table.
func referenceInsert(dialect store.Dialect, n int) string {
	if dialect == store.Postgres {
		return `INSERT INTO import_reference (competition_id, idx, payload)
			SELECT $1, $2::integer + t.o - 1, t.p FROM unnest($3::text[]) WITH ORDINALITY AS t(p, o)`
	}
	return `INSERT INTO import_reference (competition_id, idx, payload) VALUES ` +
		strings.TrimSuffix(strings.Repeat("(?,?,?),", n), ",")
}

func referenceArgs(dialect store.Dialect, id string, start int, part []json.RawMessage) []any {
	if dialect == store.Postgres {
		payloads := make([]string, len(part))
		for i, p := range part {
			payloads[i] = string(p)
		}
		return []any{id, start, payloads}
	}
	args := make([]any, 0, 3*len(part))
	for i, p := range part {
		args = append(args, id, start+i, string(p))
	}
	return args
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

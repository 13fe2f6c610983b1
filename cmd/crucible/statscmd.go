package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

	"crucible/internal/stats"
)

// ratingsTable is a parsed ratings CSV: rater names and one row per item.
type ratingsTable struct {
	raters []string
	rows   [][]float64
	lines  []int // the file line of each row, for error messages
}

// runStats computes agreement statistics on a ratings CSV:
// crucible stats kappa|icc|spearman --file CSV [--weights ...] [--json].
func runStats(_ context.Context, args []string, stdout, stderr io.Writer) error {
	verb, rest, err := subcommand(args, "stats",
		verb{"kappa", "Cohen's kappa between two raters"},
		verb{"icc", "the six Shrout & Fleiss intraclass correlations"},
		verb{"spearman", "Spearman's rank correlation between two raters"})
	if err != nil {
		return err
	}
	summaries := map[string]string{
		"kappa":    "Cohen's kappa between two raters' integer labels (scikit-learn's definition).",
		"icc":      "The six Shrout & Fleiss (1979) intraclass correlations; ICC(2,1) is icc2.",
		"spearman": "Spearman's rank correlation between two raters, average ranks for ties.",
	}
	fs := newFlags("stats "+verb, summaries[verb]+"\nThe CSV has a header row of rater names, one column per rater and one row per item.",
		"crucible stats "+verb+" --file ratings.csv --json", stderr)
	file := fs.String("file", "", "ratings CSV (header row of rater names; \"-\" reads stdin)")
	weights := fs.String("weights", "", "kappa weighting: none (default), linear or quadratic")
	o := addOutputFlags(fs, "print the result as JSON")
	if err := parse(fs, rest); err != nil {
		return err
	}
	if *file == "" {
		return usagef("--file CSV is required")
	}
	if verb != "kappa" && *weights != "" {
		return usagef("--weights applies to kappa only")
	}
	var r io.Reader
	name := *file
	if name == "-" {
		r, name = os.Stdin, "stdin"
	} else {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	tab, err := readRatings(r, name)
	if err != nil {
		return err
	}
	switch verb {
	case "kappa":
		return statsKappa(tab, name, *weights, o, stdout)
	case "icc":
		return statsICC(tab, name, o, stdout)
	default:
		return statsSpearman(tab, name, o, stdout)
	}
}

// readRatings parses a ratings CSV. Every cell must be a finite number;
// errors name the file, line and rater column.
func readRatings(r io.Reader, name string) (ratingsTable, error) {
	cr := csv.NewReader(r)
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return ratingsTable{}, fmt.Errorf("%s: empty file: want a header row of rater names", name)
	}
	if err != nil {
		return ratingsTable{}, fmt.Errorf("%s: %w", name, err)
	}
	tab := ratingsTable{}
	seen := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if h == "" {
			return ratingsTable{}, fmt.Errorf("%s: line 1: column %d has no rater name", name, i+1)
		}
		if j, dup := seen[h]; dup {
			return ratingsTable{}, fmt.Errorf("%s: line 1: rater %q names columns %d and %d", name, h, j+1, i+1)
		}
		if _, err := strconv.ParseFloat(h, 64); err == nil {
			return ratingsTable{}, fmt.Errorf("%s: line 1: header cell %q is a number; the first row must name the raters", name, h)
		}
		seen[h] = i
		tab.raters = append(tab.raters, h)
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount) {
				return ratingsTable{}, fmt.Errorf("%s: line %d: %d values, want one per rater (%d)", name, pe.StartLine, len(rec), len(tab.raters))
			}
			return ratingsTable{}, fmt.Errorf("%s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		row := make([]float64, len(rec))
		for j, cell := range rec {
			cell = strings.TrimSpace(cell)
			if cell == "" {
				return ratingsTable{}, fmt.Errorf("%s: line %d: rater %q has no value", name, line, tab.raters[j])
			}
			v, err := strconv.ParseFloat(cell, 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return ratingsTable{}, fmt.Errorf("%s: line %d: rater %q: %q is not a number", name, line, tab.raters[j], cell)
			}
			row[j] = v
		}
		tab.rows = append(tab.rows, row)
		tab.lines = append(tab.lines, line)
	}
	if len(tab.rows) == 0 {
		return ratingsTable{}, fmt.Errorf("%s: no rows after the header", name)
	}
	return tab, nil
}

// twoRaters checks that tab has exactly two rater columns.
func (tab ratingsTable) twoRaters(name, stat string) error {
	if len(tab.raters) != 2 {
		return fmt.Errorf("%s: %s takes exactly two rater columns, the header has %d (%s)", name, stat, len(tab.raters), strings.Join(tab.raters, ", "))
	}
	return nil
}

func (tab ratingsTable) column(j int) []float64 {
	out := make([]float64, len(tab.rows))
	for i, r := range tab.rows {
		out[i] = r[j]
	}
	return out
}

func statsKappa(tab ratingsTable, name, weights string, o output, stdout io.Writer) error {
	if err := tab.twoRaters(name, "kappa"); err != nil {
		return err
	}
	var w stats.Weighting
	switch weights {
	case "", "none":
		weights, w = "none", stats.None
	case "linear":
		w = stats.Linear
	case "quadratic":
		w = stats.Quadratic
	default:
		return usagef("--weights %q: want none, linear or quadratic", weights)
	}
	labels := [2][]int{}
	for i, row := range tab.rows {
		for j, v := range row {
			if v != math.Trunc(v) || math.Abs(v) > 1<<31 {
				return fmt.Errorf("%s: line %d: rater %q: kappa needs integer labels, got %v", name, tab.lines[i], tab.raters[j], v)
			}
			labels[j] = append(labels[j], int(v))
		}
	}
	k, err := stats.CohenKappa(labels[0], labels[1], w)
	if errors.Is(err, stats.ErrUndefined) {
		return fmt.Errorf("%s: kappa is undefined: both raters use one and the same label for every item", name)
	}
	if err != nil {
		return err
	}
	return o.emit(stdout, map[string]float64{"kappa": k}, func() error {
		_, err := fmt.Fprintf(stdout, "kappa (%s weights) = %.4f  (%d items, raters %s and %s)\n", weights, k, len(tab.rows), tab.raters[0], tab.raters[1])
		return err
	})
}

func statsICC(tab ratingsTable, name string, o output, stdout io.Writer) error {
	if len(tab.raters) < 2 {
		return fmt.Errorf("%s: icc needs at least two rater columns, the header has %d", name, len(tab.raters))
	}
	if len(tab.rows) < 2 {
		return fmt.Errorf("%s: icc needs at least two items (rows), got %d", name, len(tab.rows))
	}
	r, err := stats.ICC(tab.rows)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	v := struct {
		ICC1  float64 `json:"icc1"`
		ICC2  float64 `json:"icc2"`
		ICC3  float64 `json:"icc3"`
		ICC1k float64 `json:"icc1k"`
		ICC2k float64 `json:"icc2k"`
		ICC3k float64 `json:"icc3k"`
	}{r.ICC1, r.ICC2, r.ICC3, r.ICC1k, r.ICC2k, r.ICC3k}
	return o.emit(stdout, v, func() error {
		_, err := fmt.Fprintf(stdout, "%d items, %d raters (Shrout & Fleiss 1979)\n"+
			"ICC(1,1) = %.4f   one-way random, single rater\n"+
			"ICC(2,1) = %.4f   two-way random, absolute agreement, single rater\n"+
			"ICC(3,1) = %.4f   two-way mixed, consistency, single rater\n"+
			"ICC(1,k) = %.4f\nICC(2,k) = %.4f\nICC(3,k) = %.4f\n",
			r.N, r.K, r.ICC1, r.ICC2, r.ICC3, r.ICC1k, r.ICC2k, r.ICC3k)
		return err
	})
}

func statsSpearman(tab ratingsTable, name string, o output, stdout io.Writer) error {
	if err := tab.twoRaters(name, "spearman"); err != nil {
		return err
	}
	rho, err := stats.Spearman(tab.column(0), tab.column(1))
	if errors.Is(err, stats.ErrUndefined) {
		return fmt.Errorf("%s: spearman is undefined: a rater gives every item the same value", name)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return o.emit(stdout, map[string]float64{"rho": rho}, func() error {
		_, err := fmt.Fprintf(stdout, "spearman rho = %.4f  (%d items, raters %s and %s)\n", rho, len(tab.rows), tab.raters[0], tab.raters[1])
		return err
	})
}

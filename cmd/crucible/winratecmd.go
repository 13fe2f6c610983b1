package main

import (
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"crucible/internal/incentive"
)

// Bounds of a scores CSV, checked before any comparison (the work is
// quadratic in the number of models).
const (
	maxScoresBytes  = 4 << 20
	maxScoresModels = 10_000
	// blockNanos is a 12-second block, the unit of a decaying ε's age when
	// commits are times.
	blockNanos = int64(12 * time.Second)
)

// scoresFile is a parsed scores CSV.
type scoresFile struct {
	models []incentive.Model
	// times: committed values are RFC 3339 times (ticks are unix
	// nanoseconds); otherwise block numbers.
	times bool
	shown map[string]string // committed as written
}

// runWinRate computes win rates and weights from a scores CSV with a
// preset and explicit parameters.
func runWinRate(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("winrate", "Win rates and weights from total scores, the way a preset's peer computes them:\n"+
		"  crucible     every item compared, the earlier model's score ×(1+ε), ε 0.01, softmax T 0.01 (the hub's default)\n"+
		"  dippy        one comparison per pair, the later score ×0.97, failed or zero-scored models weigh exactly 0, T 0.075\n"+
		"  pretraining  ε of the earlier model decays 0.005 → 0.0001 over 50400 blocks (12 s each for times), models that\n"+
		"               cannot beat every earlier one are filtered out, T 0.01 (its EMA 0.5 applies across epochs)\n"+
		"The CSV has a header row model,committed,score; committed is a block number or an RFC 3339 time (one form\n"+
		"per file); an empty score is a failed evaluation. Here every model has one total score, so crucible's\n"+
		"per-item comparison is one comparison per pair.",
		"crucible winrate --scores scores.csv --preset dippy --json", stderr)
	file := fs.String("scores", "", "scores CSV (model,committed,score); \"-\" reads stdin")
	name := fs.String("preset", incentive.PresetCrucible, "crucible, dippy or pretraining")
	eps := fs.Float64("epsilon", 0, "the earlier model's advantage, fixed (replaces a preset's decaying ε)")
	temp := fs.Float64("temperature", 0, "softmax temperature from win rates to weights")
	lower := fs.Bool("lower-is-better", false, "scores are losses (pretraining's own form: the earlier loss ×(1−ε))")
	at := fs.String("at", "", "the current block or time for a decaying ε's ages (default: the latest commit)")
	o := addOutputFlags(fs, "print {win_rate: {model: rate}, weights: {model: weight}}")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *file == "" {
		return usagef("--scores FILE.csv is required")
	}
	cfg, err := incentive.Preset(*name)
	if err != nil {
		return usagef("--preset: %v", err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["epsilon"] {
		cfg.Epsilon, cfg.Decay = *eps, nil
	}
	if set["temperature"] {
		cfg.Temperature = *temp
	}
	cfg.LowerIsBetter = *lower
	if err := cfg.Validate(); err != nil {
		return usagef("%v", err)
	}
	sf, err := readScoresFile(*file)
	if err != nil {
		return err
	}
	tl, err := sf.timeline(*at)
	if err != nil {
		return err
	}
	res := cfg.Compute(sf.models, tl)
	return o.emit(stdout, res, func() error {
		ms := sf.models
		sort.SliceStable(ms, func(i, j int) bool { return res.Weights[ms[i].ID] > res.Weights[ms[j].ID] })
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "MODEL\tCOMMITTED\tSCORE\tWIN RATE\tWEIGHT")
		for _, m := range ms {
			score := strconv.FormatFloat(m.Score, 'g', -1, 64)
			if m.Failed {
				score = "failed"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.4g\t%.6g\n", m.ID, sf.shown[m.ID], score, res.WinRates[m.ID], res.Weights[m.ID])
		}
		tw.Flush()
		fmt.Fprintf(stdout, "preset %s, ε %s, T %g\n", cfg.Preset, describeEpsilon(cfg), cfg.Temperature)
		return nil
	})
}

func describeEpsilon(c incentive.WinRateConfig) string {
	if d := c.Decay; d != nil {
		return fmt.Sprintf("%g → %g over %d blocks", d.Start, d.End, d.Blocks)
	}
	return strconv.FormatFloat(c.Epsilon, 'g', -1, 64)
}

// readScoresFile reads and checks a scores CSV; errors name the file, the
// line and the field.
func readScoresFile(name string) (scoresFile, error) {
	var r io.Reader
	if name == "-" {
		r, name = os.Stdin, "stdin"
	} else {
		f, err := os.Open(name)
		if err != nil {
			return scoresFile{}, err
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.Size() > maxScoresBytes {
			return scoresFile{}, fmt.Errorf("%s: %d bytes, more than the limit of %d", name, st.Size(), maxScoresBytes)
		}
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxScoresBytes+1))
	if err != nil {
		return scoresFile{}, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > maxScoresBytes {
		return scoresFile{}, fmt.Errorf("%s: more than the limit of %d bytes", name, maxScoresBytes)
	}
	return parseScores(strings.NewReader(string(data)), name)
}

func parseScores(r io.Reader, name string) (scoresFile, error) {
	cr := csv.NewReader(r)
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return scoresFile{}, fmt.Errorf("%s: empty file: want a header row model,committed,score", name)
	}
	if err != nil {
		return scoresFile{}, fmt.Errorf("%s: %w", name, err)
	}
	for i := range header {
		header[i] = strings.TrimSpace(strings.TrimPrefix(header[i], "\ufeff"))
	}
	if strings.Join(header, ",") != "model,committed,score" {
		return scoresFile{}, fmt.Errorf("%s: line 1: header %q, want model,committed,score", name, strings.Join(header, ","))
	}
	sf := scoresFile{shown: map[string]string{}}
	kinds := map[bool]int{} // times? → first line
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount) {
				return scoresFile{}, fmt.Errorf("%s: line %d: %d fields, want model,committed,score", name, pe.StartLine, len(rec))
			}
			return scoresFile{}, fmt.Errorf("%s: %w", name, err)
		}
		if len(sf.models) == maxScoresModels {
			return scoresFile{}, fmt.Errorf("%s: line %d: more than %d models", name, line, maxScoresModels)
		}
		id, committed, score := strings.TrimSpace(rec[0]), strings.TrimSpace(rec[1]), strings.TrimSpace(rec[2])
		if id == "" {
			return scoresFile{}, fmt.Errorf("%s: line %d: model is empty", name, line)
		}
		if _, dup := sf.shown[id]; dup {
			return scoresFile{}, fmt.Errorf("%s: line %d: model %q appears twice", name, line, id)
		}
		m := incentive.Model{ID: id, Failed: score == ""}
		isTime := false
		if b, err := strconv.ParseInt(committed, 10, 64); err == nil && b >= 0 {
			m.Committed = b
		} else if t, err := time.Parse(time.RFC3339, committed); err == nil && t.Year() >= 1678 && t.Year() <= 2261 {
			m.Committed, isTime = t.UnixNano(), true
		} else {
			return scoresFile{}, fmt.Errorf("%s: line %d: committed %q is neither a block number nor an RFC 3339 time", name, line, committed)
		}
		if first, ok := kinds[!isTime]; ok {
			return scoresFile{}, fmt.Errorf("%s: line %d: committed %q mixes times and block numbers (line %d has the other form)", name, line, committed, first)
		}
		if _, ok := kinds[isTime]; !ok {
			kinds[isTime] = line
		}
		sf.times = isTime
		if !m.Failed {
			v, err := strconv.ParseFloat(score, 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return scoresFile{}, fmt.Errorf("%s: line %d: score %q is not a finite number (leave it empty for a failed evaluation)", name, line, score)
			}
			m.Score, m.Items = v, []float64{v}
		}
		sf.shown[id] = committed
		sf.models = append(sf.models, m)
	}
	if len(sf.models) == 0 {
		return scoresFile{}, fmt.Errorf("%s: no models after the header", name)
	}
	return sf, nil
}

// timeline is the file's clock: block numbers or unix nanoseconds, now
// being at (same form) or the latest commit.
func (sf scoresFile) timeline(at string) (incentive.Timeline, error) {
	tl := incentive.Timeline{BlockTicks: 1}
	if sf.times {
		tl.BlockTicks = blockNanos
	}
	for _, m := range sf.models {
		tl.Now = max(tl.Now, m.Committed)
	}
	if at == "" {
		return tl, nil
	}
	if sf.times {
		t, err := time.Parse(time.RFC3339, at)
		if err != nil {
			return tl, usagef("--at %q: the file's commits are times, so --at must be an RFC 3339 time", at)
		}
		tl.Now = t.UnixNano()
		return tl, nil
	}
	b, err := strconv.ParseInt(at, 10, 64)
	if err != nil || b < 0 {
		return tl, usagef("--at %q: the file's commits are block numbers, so --at must be one", at)
	}
	tl.Now = b
	return tl, nil
}

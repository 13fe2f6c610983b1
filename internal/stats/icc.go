package stats

import "fmt"

// ICCResult holds the six intraclass correlations of Shrout & Fleiss (1979),
// "Intraclass correlations: uses in assessing rater reliability",
// Psychological Bulletin 86(2), together with the ANOVA mean squares they are
// built from. N is the number of targets and K the number of raters.
type ICCResult struct {
	N, K int

	// MSR is the between-targets mean square (BMS in Shrout & Fleiss).
	MSR float64
	// MSW is the within-target mean square (WMS), used by the one-way model.
	MSW float64
	// MSC is the between-raters mean square (JMS).
	MSC float64
	// MSE is the residual mean square (EMS) of the two-way model.
	MSE float64

	// ICC1 is ICC(1,1): one-way random effects, single rater.
	ICC1 float64
	// ICC2 is ICC(2,1): two-way random effects, absolute agreement, single
	// rater. Dojo's per-rater score used this one (pingouin's "ICC2").
	ICC2 float64
	// ICC3 is ICC(3,1): two-way mixed effects, consistency, single rater.
	ICC3 float64
	// ICC1k is ICC(1,k): the one-way model for the mean of k raters.
	ICC1k float64
	// ICC2k is ICC(2,k): the two-way random model for the mean of k raters.
	ICC2k float64
	// ICC3k is ICC(3,k): the two-way mixed model for the mean of k raters.
	ICC3k float64
}

// ICC computes the Shrout & Fleiss intraclass correlations of a ratings
// matrix whose rows are targets and whose columns are raters. It needs at
// least two targets and two raters, a rectangular matrix and finite values.
//
// With n targets and k raters, SSR = k·Σ(row mean − grand mean)², SSC =
// n·Σ(column mean − grand mean)², SST the total sum of squares, SSE = SST −
// SSR − SSC and SSW = SST − SSR; MSR = SSR/(n−1), MSC = SSC/(k−1), MSE =
// SSE/((n−1)(k−1)), MSW = SSW/(n(k−1)); then
//
//	ICC(1,1) = (MSR − MSW) / (MSR + (k−1)·MSW)
//	ICC(2,1) = (MSR − MSE) / (MSR + (k−1)·MSE + k·(MSC − MSE)/n)
//	ICC(3,1) = (MSR − MSE) / (MSR + (k−1)·MSE)
//	ICC(1,k) = (MSR − MSW) / MSR
//	ICC(2,k) = (MSR − MSE) / (MSR + (MSC − MSE)/n)
//	ICC(3,k) = (MSR − MSE) / MSR
//
// Any coefficient whose denominator is zero (flat data, for instance every
// rating equal) is 0 rather than NaN, matching Dojo's rule that a flat rater
// earns an ICC of 0.
func ICC(ratings [][]float64) (ICCResult, error) {
	n := len(ratings)
	if n < 2 {
		return ICCResult{}, fmt.Errorf("icc: need at least 2 targets, got %d", n)
	}
	k := len(ratings[0])
	if k < 2 {
		return ICCResult{}, fmt.Errorf("icc: need at least 2 raters, got %d", k)
	}
	for i, row := range ratings {
		if len(row) != k {
			return ICCResult{}, fmt.Errorf("icc: row %d has %d ratings, want %d", i, len(row), k)
		}
		if !finite(row) {
			return ICCResult{}, fmt.Errorf("icc: row %d has a non-finite rating", i)
		}
	}
	var grand float64
	rowMean := make([]float64, n)
	colMean := make([]float64, k)
	for i, row := range ratings {
		for j, v := range row {
			rowMean[i] += v
			colMean[j] += v
			grand += v
		}
	}
	nf, kf := float64(n), float64(k)
	grand /= nf * kf
	for i := range rowMean {
		rowMean[i] /= kf
	}
	for j := range colMean {
		colMean[j] /= nf
	}
	var sst, ssr, ssc float64
	for i, row := range ratings {
		for _, v := range row {
			d := v - grand
			sst += d * d
		}
		d := rowMean[i] - grand
		ssr += d * d
	}
	ssr *= kf
	for _, m := range colMean {
		d := m - grand
		ssc += d * d
	}
	ssc *= nf
	sse := sst - ssr - ssc
	ssw := sst - ssr
	if sse < 0 { // rounding on exactly additive data
		sse = 0
	}
	if ssw < 0 {
		ssw = 0
	}
	r := ICCResult{
		N:   n,
		K:   k,
		MSR: ssr / (nf - 1),
		MSC: ssc / (kf - 1),
		MSE: sse / ((nf - 1) * (kf - 1)),
		MSW: ssw / (nf * (kf - 1)),
	}
	r.ICC1 = ratio(r.MSR-r.MSW, r.MSR+(kf-1)*r.MSW)
	r.ICC2 = ratio(r.MSR-r.MSE, r.MSR+(kf-1)*r.MSE+kf*(r.MSC-r.MSE)/nf)
	r.ICC3 = ratio(r.MSR-r.MSE, r.MSR+(kf-1)*r.MSE)
	r.ICC1k = ratio(r.MSR-r.MSW, r.MSR)
	r.ICC2k = ratio(r.MSR-r.MSE, r.MSR+(r.MSC-r.MSE)/nf)
	r.ICC3k = ratio(r.MSR-r.MSE, r.MSR)
	return r, nil
}

// ratio returns num/den, or 0 when den is zero.
func ratio(num, den float64) float64 {
	if den == 0 {
		return 0
	}
	return num / den
}

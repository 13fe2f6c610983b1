// Package incentive owns the arithmetic that turns evaluation scores into
// rewards: pairwise win rates with time priority, weight normalisation
// (softmax, exponential moving average, L1 normalisation) and one epoch of
// Yuma consensus over validators' weights.
//
// It is pure computation and must never import anything that does I/O: no
// os, net, database/sql, log, and none of Crucible's store, jobs, api or
// inference packages. Time enters only as values (commit times, block ages).
//
// # Win rates with time priority
//
// A contender committed earlier gets a (1+ε) advantage on every item: if B
// was committed before A, A wins an item only when score_A > score_B·(1+ε);
// if A was committed first, A wins when score_A·(1+ε) > score_B; equal commit
// times give no advantage (strictly higher wins, equal scores win nothing).
// A contender's win rate is items won / (items·(N−1)), and 1 when it is
// alone. This is the crucible preset; the peers' own rules are the dippy
// and pretraining presets of WinRateConfig (presets.go): one comparison
// per pair on total scores, the later model's score × (1−ε) (Dippy 0.97),
// failed or zero-scored models weighing exactly 0 (Dippy), an ε that
// decays linearly with the earlier model's age and a competitive filter
// (pretraining, DecayingEpsilon and CompetitiveModels).
//
// # Yuma consensus (one epoch)
//
// Following subtensor's pallets/subtensor/src/epoch/run_epoch.rs and the
// helpers in epoch/math.rs, with W the validators × miners weight matrix and
// S the stakes:
//
//	W ← row-normalise(W)                      (a zero row stays zero)
//	S ← S / ΣS
//	C_j  = max{ w : Σ_i S_i·[W_ij ≥ w] ≥ κ }   stake-weighted median, κ = 0.5
//	W̄_ij = min(W_ij, C_j)                     clip to consensus
//	Tv_i = Σ_j W̄_ij                           validator trust
//	P_j  = Σ_i S_i·W_ij,  R_j = Σ_i S_i·W̄_ij   pre-ranks and ranks
//	T_j  = R_j / P_j                          miner trust (0 when P_j = 0)
//	I_j  = R_j / Σ R                          incentive
//	ΔB   = colnorm(S_i·W̄_ij)
//	B    = colnorm(α·ΔB + (1−α)·colnorm(B_old)),  α = 0.1 (B_old = 0 if none)
//	D_i  = Σ_j B_ij·I_j, then D ← D / ΣD      dividends
//	miner emission_j     = MinerShare·E·I_j
//	validator emission_i = (1−MinerShare)·E·D_i
//
// When no miner has incentive (no weights, or nothing survives clipping), the
// whole emission goes to validators in proportion to stake, as subtensor does
// when the combined emission is zero. Subtensor computes in I32F32 fixed
// point; we use float64, so results agree to about 1e-9.
package incentive

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
//	S ← S / ΣS; permits: stake > 0 and, with MaxValidators k, the top k
//	A  = S masked (no permit, or last update + cutoff < block), normalised
//	W ← W with rows of validators without a permit and self-weights zeroed,
//	    (Quantize: each row max-upscaled to u16 first), row-normalised
//	C_j  = max{ w : Σ_i A_i·[W_ij ≥ w] ≥ κ }   stake-weighted median, κ = 32767/65535
//	W̄_ij = min(W_ij, C_j)                     clip to consensus
//	Tv_i = Σ_j W̄_ij                           validator trust
//	P_j  = Σ_i A_i·W_ij,  R_j = Σ_i A_i·W̄_ij   pre-ranks and ranks
//	T_j  = R_j / P_j                          miner trust (0 when P_j = 0)
//	I_j  = R_j / Σ R                          incentive
//	W_b  = W + β·(W̄ − W)                      bonds penalty β = 1
//
// Yuma 1 (subtensor's default):
//
//	ΔB = colnorm(A_i·W_b,ij)
//	B  = colnorm(α·ΔB + (1−α)·colnorm(B_old)),  α = 0.1 (B_old = 0 if none)
//	D_i = Σ_j B_ij·I_j, then D ← D / ΣD
//
// Yuma 3 (bonds are proportions in [0, 1], never column-normalised):
//
//	B_ij = min(1, (1−α_ij)·B_old,ij + α_ij·W_b,ij)
//	α_ij = α, or with liquid alpha low + (high−low)·σ(steepness/100·(d−½)),
//	       d = W_b − C (weight ≥ bond) or B_old − W_b (weight < bond), in [0, 1]
//	D_i = A_i·Σ_j colnorm(B)_ij·I_j, then D ← D / ΣD
//
// and then, for both:
//
//	miner emission_j     = MinerShare·E·I_j
//	validator emission_i = (1−MinerShare)·E·D_i
//
// When no miner has incentive (no weights, or nothing survives clipping), the
// whole emission goes to validators in proportion to active stake (to stake
// when none is active), as subtensor does when the combined emission is
// zero. Subtensor computes in I32F32 fixed point; we use float64, so results
// agree to about 1e-9, except that with Quantize bonds are stored the way
// the chain stores them (u16, after truncation to I32F32), which reproduces
// its stored u16 values exactly in its test vectors.
package incentive

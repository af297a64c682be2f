"""Figure stems and caption texts (also written as reStructuredText for the Snakemake report)."""

from __future__ import annotations

from ..stats import S_TAU
from .plaquette_history_histogram import HISTORY_CHAINS, HISTORY_MAX
from .q_autocorrelation import N_BETAS
from .style import GROUP_LABEL, GROUP_ORDER, TOPOLOGICAL

# ---------------------------------------------------------------------- captions
def figure_stems(groups) -> list[str]:
    """The file stems ``make_figures`` writes for a campaign with these groups, in order
    (one ``beta_extrapolation_<g>`` per group; a placeholder without groups)."""
    groups = [str(g).lower() for g in groups]
    extrapolation = [f"beta_extrapolation_{g}" for g in groups] or ["beta_extrapolation"]
    return ["wilson_loops", "wilson_loops_all_L", *extrapolation, "diffusion_sampler", "diffusion_sampler_levels",
            "topology", "plaquette_history_histogram", "autocorrelation_cost", "q_autocorrelation", "training_loss"]


# the inputs each figure reads besides the campaign table (the Snakemake rule asks for them)
NEEDS_PER_CONFIG = ("topology", "plaquette_history_histogram", "q_autocorrelation")
NEEDS_SAMPLES = ("diffusion_sampler_levels",)
NEEDS_LOSS = ("training_loss",)
NEEDS_NO_TABLE = ("training_loss",)


def _every_L_and_history_captions(at_L: str, exact: str) -> dict[str, str]:
    """Captions of the Wilson loops at every L, the W(1x1) histories, the autocorrelation of Q
    and the sampler per noise level."""
    return {
        "wilson_loops_all_L": (
            "Wilson loops W(R,T) against the loop area RT at every lattice size of the campaign; one "
            "row (or more) per gauge group and L, columns: couplings beta, so that a column compares "
            "the volumes at one coupling (the model's generalisation from its training L0). Markers, "
            f"pulls and the 2 sigma cut as in the single-L Wilson-loop figure. {exact}"
        ),
        "diffusion_sampler_levels": (
            "The exact diffusion sampler along its noise levels sigma (annealing from large to small "
            "noise, left to right), from the sample files' level history; one row per group and L, "
            "one curve per target coupling beta (light to dark: small to large beta). Left: ESS/N of "
            "the importance weights at each level, after reweighting and before resampling (dotted: "
            "the resampling threshold). Middle: Metropolis acceptance of the level's moves (dotted: "
            "the target the pilot tunes to). Right: the tuned step size. Lines: mean over the SMC "
            "batches; bands: the middle half of the batches (quartiles). Dashed curves (MAALA, where "
            "it ran) have no weights and so no ESS."
        ),
        "plaquette_history_histogram": (
            f"The plaquette W(1x1) at the largest coupling with data ({at_L}), one row per group. "
            "Left: normalised histograms of W(1x1) for HMC and the diffusion model (the exact "
            "sampler's samples with their importance weights), each on its own bins; the black line "
            "is the exact expectation value. Right: Monte Carlo history of W(1x1) along the HMC "
            f"chains, one after the other (up to {HISTORY_CHAINS} chains, {HISTORY_MAX} "
            "configurations in all), with the exact value."
        ),
        "q_autocorrelation": (
            "Normalised autocorrelation function rho(t) of the topological charge Q against the lag "
            f"t (in stored configurations) for the HMC chains at the {N_BETAS} largest couplings, one "
            "panel per group and L, from the Gamma method over the chains as replicas (the analysis "
            "behind the table's tau_int; bands: error of rho). Lower panels: tau_int(W) summed up to "
            f"the window W; the dotted lines mark the automatic window (S = {S_TAU:g}) and the dots "
            "the table's tau_int, which carries Wolff's bias correction (1 + (2W+1)/N)/(1 + 1/N) and "
            "so lies above the curve. A run whose chains never change Q has no autocorrelation."
        ),
    }


def captions(L: int | None = None, groups=GROUP_ORDER) -> dict[str, str]:
    """Caption text per figure stem (``beta_extrapolation_<g>`` for each group)."""
    at_L = f"L = {L}" if L is not None else "one lattice size"
    exact = "Black lines: exact finite-torus results from the character expansion."
    out = {
        "wilson_loops": (
            f"Wilson loops W(R,T) against the loop area RT at {at_L}; rows: gauge groups, "
            "columns: couplings beta. HMC (open squares) and the diffusion model (filled circles: "
            "exact importance-weighted SMC; open diamonds: the papers' MAALA, approximate); loops "
            f"not significantly above zero (W < 2 sigma) are "
            f"left out of the upper panels. {exact} Lower panels: pulls (value - exact)/error of "
            "every loop; the shaded band is +-1, the dotted lines +-2."
        ),
        "diffusion_sampler": (
            "The exact diffusion sampler (importance-weighted SMC along the model's noise levels) "
            "against the target coupling beta, one curve per lattice size L, one column per group; "
            "the dotted line marks the training coupling beta0. Top: effective sample size per "
            "sample, ESS/N of the importance weights of the whole file -- the model's quality "
            "shows up here, never as bias. Middle: the Metropolis step size at the target, tuned "
            "by the pilot run to the fixed target acceptance (a better drift allows larger "
            "steps); open diamonds: the approximate MAALA tail's step size where it ran. Bottom: "
            "resampling events per SMC batch."
        ),
        "topology": (
            f"Topological charge at the largest coupling with data ({at_L}). Left: normalised "
            "histograms of Q for HMC and for the diffusion model (importance-weighted for the exact "
            "sampler); the black curve is a Gaussian "
            "with the exact variance chi_t V. Right: Monte Carlo history of Q (HMC: first chain; "
            "diffusion: samples in order). Frozen HMC histories show topological freezing."
        ),
        "autocorrelation_cost": (
            "Left: integrated autocorrelation time tau_int of the topological charge Q (of the "
            "plaquette for SU(2), which has no topology) in units of stored configurations, from "
            "the Gamma method; independent diffusion samples have tau_int = 1/2. Right: wall-clock "
            "cost per independent sample, wall time / n_eff, excluding training. Colours: lattice "
            "size L; open squares HMC, filled circles diffusion."
        ),
        "training_loss": (
            "Denoising score-matching loss against optimiser step for each trained model "
            "(thin: raw, thick: running mean)."
        ),
    }
    out.update(_every_L_and_history_captions(at_L, exact))
    for g in groups:
        topo = " and the topological susceptibility chi_t = <Q^2>/V" if g in TOPOLOGICAL else ""
        out[f"beta_extrapolation_{g}"] = (
            f"{GROUP_LABEL.get(g, g)}: average plaquette, W(2,2){topo} against the coupling beta for "
            "every target lattice size L (colours); open squares HMC, filled circles the diffusion "
            f"model trained at beta0 (dotted line) and sampled exactly (weighted SMC); open diamonds "
            f"the approximate MAALA where it ran. {exact} Lower panels: "
            "pulls (value - exact)/error."
        )
    return out


def _caption_rst(text: str) -> str:
    return text.replace("chi_t", ":math:`\\chi_t`").replace("tau_int", ":math:`\\tau_\\mathrm{int}`") + "\n"

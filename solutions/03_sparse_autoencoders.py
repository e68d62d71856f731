# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Sparse autoencoders, from ground truth to a real model, with controls
#
# A sparse autoencoder (SAE) rewrites each activation vector as a sparse sum of directions
# from a learned dictionary, hoping that each direction is one *feature* the model uses. On
# real activations nobody knows the true features, so "the SAE found features" is hard to
# check. This chapter first trains SAEs where the answer is known, then on a real language
# model, and asks of every result: would a model that learned nothing, or data with no
# structure, give the same?
#
# **What you will learn**
# - build activations from many sparse features squeezed into fewer dimensions (superposition),
#   train ReLU + L1 and TopK SAEs on them, and measure L0, the fraction of variance
#   unexplained, dead latents and how many true features come back;
# - see what a wrong sparsity (k too small or too large) does to the features, even while the
#   reconstruction keeps improving;
# - train several SAEs at once in one tensor and test Mutual Feature Regularization;
# - train a TopK SAE on a real model's residual stream on a laptop CPU and measure how much of
#   the language-modelling loss survives when it replaces the residual stream;
# - read latents through their top-activating contexts, score them automatically, and compare
#   the real model with controls: shuffled text, a randomly initialised model, and a random
#   model with the trained model's singular values.
#
# **Papers**
# - Bricken et al. 2023, "Towards Monosemanticity: Decomposing Language Models With Dictionary
#   Learning" (transformer-circuits.pub/2023/monosemantic-features);
# - Gao et al. 2024, "Scaling and evaluating sparse autoencoders" (arXiv 2406.04093): TopK, AuxK;
# - Marks, Paren, Krueger & Barez 2024, "Enhancing Neural Network Interpretability with
#   Feature-Aligned Sparse Autoencoders" (arXiv 2411.01220): Mutual Feature Regularization;
# - Karvonen et al. 2025, "SAEBench" (arXiv 2503.09532): why proxy metrics are not enough;
# - Chanin & Garriga-Alonso 2025, "Sparse but Wrong" (arXiv 2508.16560): a wrong L0 gives wrong features;
# - Heap, Lawson, Farnik & Aitchison 2025, "Sparse Autoencoders Can Interpret Randomly
#   Initialized Transformers" (arXiv 2501.17727): the control this chapter takes seriously.
#
# **Time**: about 75 minutes. **Runs on**: a laptop CPU (fast scale: about four minutes of
# compute, under 2 GB of memory) or a GPU (full scale: more tokens, wider dictionaries).

# %%
# Set-up. On Colab this fetches the course and installs what Colab lacks; everywhere it puts the course on the path.
import sys
import subprocess
import pathlib
if "google.colab" in sys.modules:
    if not pathlib.Path("/content/glassbox").exists():
        subprocess.run("git clone -q --depth 1 --branch v0.1 https://github.com/glassbox-course/glassbox"
                       " /content/glassbox", shell=True, check=True)
    # idempotent: after a runtime restart it only checks its marker (tools/colab_install.sh)
    subprocess.run("bash /content/glassbox/tools/colab_install.sh", shell=True, check=True)
roots = [pathlib.Path.cwd(), *pathlib.Path.cwd().parents, pathlib.Path("/content/glassbox")]
sys.path.insert(0, str(next(p for p in roots if (p / "utils" / "env.py").exists())))
from utils.env import setup, scale
SETUP = setup("03_sparse_autoencoders")

# %%
import gc
import tempfile
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from utils.checks.saes import (check_ce_loss_recovered, check_feature_recovery, check_mfr_penalty, check_purity_gain,
                               check_sae_metrics, check_topk_activation)
from utils.controls import random_weights_copy, spectrum_matched, weight_matrices
from utils.data import collect_resid, labelled_code_corpus, split_documents, stdlib_docstrings, stdlib_sources
from utils.data import tokenize_with_offsets
from utils.models import load_lm
from utils import activations as act
from utils import stats
from utils.controls import require_equal_norm, require_not_identity
from utils.report import claim, record
from utils.sae import SAE, ToyData, evaluate, load_published_sae, save_sae, top_activations, train_sae

# %% tags=["parameters"]
# Parts 1-2: toy data with known features
N_FEATURES = scale(fast=128, full=256)       # true features
D_TOY = scale(fast=32, full=64)              # the dimensions they are squeezed into
TRUE_L0 = 4                                  # mean number of active features per input
CORRELATION = 0.7                            # features come in pairs that tend to fire together
K_SWEEP = [1, 2, 3, 4, 6, 8, 12, 16]         # one TopK SAE per k (must include TRUE_L0, 1 and 16)
L1_SWEEP = [0.1, 0.3, 0.6, 1.0, 2.0]         # one ReLU + L1 SAE per strength
TOY_STEPS = scale(fast=1000, full=4000)      # Adam steps for every toy SAE
TOY_BATCH = 256
TOY_LR = 1e-2
N_MFR = scale(fast=3, full=5)                # SAEs trained side by side in part 2
MFR_WIDTH = 2                                # latents per true feature in part 2
MFR_COEFF = 0.1                              # weight of the MFR penalty
MFR_STEPS = scale(fast=800, full=4000)
# Parts 3-5: the real model
LAYER = scale(fast=8, full=15)               # blocks.{LAYER}.hook_resid_pre of the 30-layer model
N_FILES = scale(fast=108, full=1200)         # standard-library files, one window each (60% train, 40% test)
N_DOCSTRINGS = scale(fast=24, full=400)      # extra English prose for training
TOKENS_PER_DOC = scale(fast=128, full=256)
EXPANSION = scale(fast=2, full=16)           # latents per residual dimension
K_REAL = 32                                  # active latents per token
SAE_STEPS = scale(fast=80, full=3000)
SAE_BATCH = scale(fast=1024, full=4096)
SAE_LR = scale(fast=3e-3, full=1e-3)
N_CE_SEQS = scale(fast=8, full=64)           # held-out windows for the loss-recovered measurement
N_RANDOM_DIRECTIONS = 20                     # equal-norm random pushes against which latent steering is compared
CE_BATCH = scale(fast=2, full=16)            # ... run this many at a time
N_TOP = 16                                   # top activations per latent for the interpretability proxy
MIN_POS = 8                                  # only positions >= MIN_POS compete for top activations
SEED = SETUP.seed
DEVICE = SETUP.device                        # the real model and its SAEs; the toy parts run on the CPU

# %% [markdown]
# ## 1. Ground truth first
#
# **The data.** `N_FEATURES` unit vectors (the true features) live in `D_TOY` dimensions, four
# times fewer. An input is `x = Σ_i a_i f_i`: each feature fires with probability
# `TRUE_L0 / N_FEATURES` and then has a magnitude between 0.5 and 1.5, so about `TRUE_L0`
# features are active at a time. That sparsity is what lets more features than dimensions
# coexist (superposition). Features come in pairs whose firing is correlated (a Gaussian
# copula with correlation `CORRELATION`), as real features are: "inside a string" and
# "inside a docstring" tend to fire together.
#
# **The SAE.** `encode(x) = act((x − b_dec) W_enc + b_enc)`, `decode(z) = z W_dec + b_dec`.
# Each row of `W_dec` is one latent's direction, kept at unit length. Two ways to make `z` sparse:
# - **ReLU + L1** (Bricken et al.): `act = ReLU`, and the loss adds `λ Σ_j z_j`. The penalty
#   also shrinks the activations that survive, so reconstructions come out too small.
# - **TopK** (Gao et al.): keep the `k` largest pre-activations of each input, zero the rest.
#   Sparsity is set directly (L0 = k) and nothing is shrunk.
#
# `utils/sae.py` holds `n` SAEs in one set of tensors (`W_enc` is `[n, d, m]`) and trains them
# all with one batched matrix product per step: a sweep over eight values of `k` is one
# training loop, not eight. Read its `SAE` class; it is short.
#
# ### Exercise 1 — TopK
# Difficulty 🔴⚪⚪ · Importance 🔵🔵🔵 · ~5 min
#
# Keep the `k` largest pre-activations of each input (each row), set the rest to zero, and put
# the kept values through a ReLU: a latent never fires negatively.

# %%
def topk_activation(pre: torch.Tensor, k: int) -> torch.Tensor:
    """pre: float ``[batch, n_latents]`` → same shape, at most ``k`` non-zeros per row."""
    # BEGIN SOLUTION hint: pre.topk(k, dim=-1) gives values and indices; scatter the ReLU-ed values into
    # ... torch.zeros_like(pre)
    values, indices = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, indices, values.relu())
    # END SOLUTION


check_topk_activation(topk_activation)

# %%
toy = ToyData.make(N_FEATURES, D_TOY, p=TRUE_L0 / N_FEATURES, seed=SEED, group_size=2, correlation=CORRELATION)
x_test, a_test = toy.sample(20_000, torch.Generator().manual_seed(SEED + 1))
active = (a_test > 0).float()
pair_corr = torch.corrcoef(active[:, :2 * (N_FEATURES // 2)].T)[0::2, 1::2].diagonal().mean()
print(f"{N_FEATURES} features in {D_TOY} dimensions; active per input: mean {active.sum(1).mean():.2f}, "
      f"max {int(active.sum(1).max())}; firing correlation within a pair {pair_corr:.2f}")

probe = SAE(D_TOY, N_FEATURES, k=TRUE_L0, seed=SEED)
with torch.no_grad():
    same = torch.equal(topk_activation(probe.pre_acts(x_test[:256]), TRUE_L0), probe.encode(x_test[:256]))
print("your topk_activation matches the SAE's own:", same)
assert same, "topk_activation should agree with SAE.encode for a TopK SAE"

# %% [markdown]
# ### Exercise 2 — how good is an SAE? L0, FVU, dead latents
# Difficulty 🔴⚪⚪ · Importance 🔵🔵🔵 · ~10 min
#
# - **L0**: the mean number of active latents per input, counted on the latents *after* the
#   sparsifying activation (`sae.encode`).
# - **FVU**, the fraction of variance unexplained: `Σ‖x − x̂‖² / Σ‖x − mean(x)‖²`, summed over
#   inputs and dimensions. The denominator is the variance around the mean. Real activations
#   have a large mean (a constant offset), and dividing by `Σ‖x‖²` would hide a bad SAE
#   behind it. 0 is perfect; 1 is no better than always answering the mean.
# - **dead fraction**: the share of latents that are zero on every input.

# %%
def sae_metrics(sae: SAE, x: torch.Tensor) -> dict:
    """A single SAE and inputs ``x [N, d]`` → ``{"l0": float, "fvu": float, "dead_fraction": float}``."""
    # BEGIN SOLUTION hint: z = sae.encode(x), x_hat = sae.decode(z) under torch.no_grad(); count z > 0 per row; center x
    # ... with x.mean(0) for the denominator; a latent is dead when (z > 0).any(0) is False
    with torch.no_grad():
        z = sae.encode(x)
        x_hat = sae.decode(z)
    fvu = (x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum()
    return {"l0": (z > 0).sum(-1).float().mean().item(), "fvu": fvu.item(),
            "dead_fraction": (~(z > 0).any(0)).float().mean().item()}
    # END SOLUTION


check_sae_metrics(sae_metrics)

# %% [markdown]
# ### Exercise 3 — did the SAE find the true features?
# Difficulty 🔴⚪⚪ · Importance 🔵🔵🔵 · ~5 min
#
# For each *true* feature, the cosine similarity of the closest learned direction (a decoder
# row). The mean over features is the "mean max cosine similarity" (MMCS); we also count a
# feature as **recovered** when its best cosine is at least 0.9. Take the signed cosine: a
# latent that points the opposite way cannot represent a feature with positive magnitudes.

# %%
def feature_recovery(learned: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """learned ``[m, d]`` (decoder rows, any length), true ``[f, d]`` → float ``[f]``: for each true
    feature, its largest cosine similarity with a learned direction."""
    # BEGIN SOLUTION hint: divide each row of both matrices by its norm, then (true @ learned.T).max(dim=-1).values
    learned = learned / learned.norm(dim=-1, keepdim=True)
    true = true / true.norm(dim=-1, keepdim=True)
    return (true @ learned.T).max(dim=-1).values
    # END SOLUTION


check_feature_recovery(feature_recovery)

# %% [markdown]
# Now the sweeps: eight TopK SAEs (one per `k`) trained side by side, then five ReLU SAEs (one
# per L1 strength). Both use `N_FEATURES` latents, Adam, and a fresh batch of toy data every
# step. Dead TopK latents get Gao et al.'s auxiliary loss (AuxK): the largest pre-activations
# among latents that have not fired for a while must explain what the live ones missed, which
# pulls them back towards useful directions.

# %%
def data_stream(batch_size, generator):
    return toy.sample(batch_size, generator)[0]


start = time.perf_counter()
topk_saes = SAE(D_TOY, N_FEATURES, n=len(K_SWEEP), k=K_SWEEP, seed=SEED)
train_sae(topk_saes, data_stream, TOY_STEPS, batch_size=TOY_BATCH, lr=TOY_LR, seed=SEED, desc="TopK sweep")
seconds = time.perf_counter() - start
TOY_THROUGHPUT = len(K_SWEEP) * TOY_STEPS * TOY_BATCH / seconds
print(f"{len(K_SWEEP)} TopK SAEs x {TOY_STEPS} steps in {seconds:.1f} s: {TOY_THROUGHPUT:,.0f} SAE-inputs/s")

relu_saes = SAE(D_TOY, N_FEATURES, n=len(L1_SWEEP), activation="relu", seed=SEED)
train_sae(relu_saes, data_stream, TOY_STEPS, batch_size=TOY_BATCH, lr=TOY_LR, l1=L1_SWEEP, seed=SEED,
          desc="ReLU + L1 sweep")


def summarise(saes: SAE) -> dict:
    metrics = evaluate(saes, x_test)
    recovery = torch.stack([feature_recovery(saes.W_dec[i].detach(), toy.features) for i in range(saes.n)])
    return {"l0": metrics["l0"].numpy(), "fvu": metrics["fvu"].numpy(), "dead": metrics["dead"].numpy(),
            "mmcs": recovery.mean(1).numpy(), "recovered": (recovery >= 0.9).float().mean(1).numpy()}


topk, relu = summarise(topk_saes), summarise(relu_saes)
for name, values, res in [("k", K_SWEEP, topk), ("λ", L1_SWEEP, relu)]:
    for i, v in enumerate(values):
        print(f"{name} = {v:<4} L0 {res['l0'][i]:5.2f}  FVU {res['fvu'][i]:.3f}  dead {res['dead'][i]:.3f}  "
              f"MMCS {res['mmcs'][i]:.3f}  recovered {res['recovered'][i]:.0%}")

right = K_SWEEP.index(TRUE_L0)
mine = sae_metrics(topk_saes.select(right), x_test)
print(f"\nyour sae_metrics on the k = {TRUE_L0} SAE: {mine}")
assert abs(mine["fvu"] - topk["fvu"][right]) < 1e-4 and abs(mine["l0"] - topk["l0"][right]) < 1e-4, \
    "sae_metrics should agree with utils.sae.evaluate"

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for res, label, values, style in [(topk, "TopK", K_SWEEP, "-o"), (relu, "ReLU + L1", L1_SWEEP, "-s")]:
    axes[0].plot(res["l0"], res["fvu"], style, label=label)
    axes[1].plot(res["l0"], res["recovered"], style, label=label)
    for v, x, y in zip(values, res["l0"], res["fvu"]):
        axes[0].annotate(f"{'k' if label == 'TopK' else 'λ'}={v}", (x, y), fontsize=7, xytext=(3, 3),
                         textcoords="offset points")
for ax in axes:
    ax.axvline(TRUE_L0, color="gray", ls=":", label="true L0")
    ax.set_xscale("log")
    ax.set_xlabel("L0 (active latents per input)")
axes[0].set(title="sparsity–fidelity frontier", ylabel="fraction of variance unexplained")
axes[1].set(title="true features recovered (cosine ≥ 0.9)", ylabel="share of true features")
axes[0].legend()
plt.tight_layout()
plt.show()

too_small = topk_saes.W_dec[K_SWEEP.index(1)].detach()
cos = F.normalize(toy.features, dim=-1) @ F.normalize(too_small, dim=-1).T          # [features, latents]
best_cos, best_latent = cos.max(1)
partner = torch.arange(N_FEATURES) ^ 1                                               # pairs: (0, 1), (2, 3), ...
missed = best_cos < 0.9
with_partner = cos[partner, best_latent]
print(f"k = 1 misses {int(missed.sum())} features; the latent closest to a missed feature has cosine "
      f"{best_cos[missed].mean():.2f} with it and {with_partner[missed].mean():.2f} with its partner "
      f"(for found features: {with_partner[~missed].mean():.2f})")

# %% [markdown]
# Read the two panels together.
# - **Left**: the frontier. More active latents always reconstruct better, and TopK reaches a
#   lower FVU than ReLU + L1 at the same L0 (the L1 penalty shrinks every activation it keeps).
# - **Right**: the features. Recovery peaks near the true L0 and collapses on both sides,
#   while the left panel keeps improving. With **k too small** the SAE cannot afford one latent
#   per feature when correlated pairs fire together, so it spends one latent on the pair: the
#   latent nearest a missed feature leans towards that feature's partner (the last line printed
#   above: compare its cosine with the partner to the same number for the features that were
#   found). With **k too
#   large** the SAE has capacity to spare and learns mixtures of features that reconstruct even
#   better. This is the point of "Sparse but Wrong": the reconstruction metric does not tell
#   you that L0 is wrong; only the ground truth (or a proxy for it) does.

# %%
relu_in_range = (relu["l0"] >= min(topk["l0"])) & (relu["l0"] <= max(topk["l0"]))
topk_fvu_at_relu_l0 = np.interp(np.log(relu["l0"][relu_in_range]), np.log(topk["l0"]), topk["fvu"])
print("ReLU FVU minus TopK FVU at the same L0:", np.round(relu["fvu"][relu_in_range] - topk_fvu_at_relu_l0, 3))
TOY_RECOVERED = float(topk["recovered"][right])
claim("toy_recovered_at_true_l0", TOY_RECOVERED, ">=", 0.8, why="TopK at the true L0 recovers most true features")
claim("toy_k1_recovers_fewer", TOY_RECOVERED - topk["recovered"][0], ">", 0.1,
      why="k = 1 merges correlated features and recovers fewer")
claim("toy_k16_recovers_far_fewer", TOY_RECOVERED - topk["recovered"][-1], ">", 0.3,
      why="k = 16 learns mixtures and recovers far fewer")
claim("toy_fvu_keeps_improving", topk["fvu"][right] - topk["fvu"][-1], ">", 0.0,
      why="the reconstruction keeps improving past the right k")
assert relu_in_range.any(), "some ReLU SAE should land inside the TopK sweep's L0 range"
claim("toy_topk_beats_relu_fvu", (relu["fvu"][relu_in_range] - topk_fvu_at_relu_l0).min(), ">", 0.0,
      why="at the same L0, TopK reconstructs better than ReLU + L1 (every ReLU SAE in range)")

# %% [markdown]
# ## 2. Several SAEs, and Mutual Feature Regularization
#
# Train the same SAE several times from different initialisations. A direction that several
# runs find independently is less likely to be an accident of one run. Marks, Paren, Krueger
# & Barez turned this into a training signal, **Mutual Feature Regularization (MFR)**: train
# the SAEs side by side and penalise them for disagreeing.
#
# We give each SAE `MFR_WIDTH` latents per true feature, as one does on real data where the
# number of features is unknown: the SAEs now have latents to spare, and the spare ones end
# up dead, duplicated, or pointing somewhere no true feature is. First, `N_MFR` independent
# SAEs, trained side by side in one tensor.

# %%
width = MFR_WIDTH * N_FEATURES
independent = SAE(D_TOY, width, n=N_MFR, k=TRUE_L0, seed=SEED + 100)
train_sae(independent, data_stream, MFR_STEPS, batch_size=TOY_BATCH, lr=TOY_LR, seed=SEED, desc="independent SAEs")
alive = evaluate(independent, x_test)["freq"] > 0                                          # [N_MFR, width]
truth = torch.stack([feature_recovery(toy.features, independent.W_dec[i].detach()) for i in range(N_MFR)])
agreement = torch.stack([torch.stack([feature_recovery(independent.W_dec[j].detach(), independent.W_dec[i].detach())
                                      for j in range(N_MFR) if j != i]).mean(0) for i in range(N_MFR)])

# %% [markdown]
# `truth[i, j]`: how close latent `j` of SAE `i` is to its nearest true feature (the same
# function as before, with the roles swapped). `agreement[i, j]`: how close it is to its
# nearest latent in each *other* SAE, averaged over them. Only live latents count.

# %%
is_true = truth[alive] >= 0.9
agreed = agreement[alive] >= 0.9
p_true_agreed, p_true_alone = is_true[agreed].float().mean().item(), is_true[~agreed].float().mean().item()
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
axes[0].scatter(agreement[alive], truth[alive], s=6, alpha=0.5)
axes[0].set(xlabel="agreement with the other SAEs", ylabel="cosine with the nearest true feature",
            title="live latents of the independent SAEs")
axes[1].bar(["found by the others\n(agreement ≥ 0.9)", "not found by the others"], [p_true_agreed, p_true_alone])
axes[1].set(ylabel="share that are true features (cos ≥ 0.9)", ylim=(0, 1))
plt.tight_layout()
plt.show()
print(f"{int(agreed.sum())} live latents agree with the other SAEs, {int((~agreed).sum())} do not; "
      f"true features among them: {p_true_agreed:.0%} vs {p_true_alone:.0%}")
claim("agreement_marks_true_features", p_true_agreed - p_true_alone, ">", 0.3,
      why="latents found by several SAEs are far more often true features")

# %% [markdown]
# ### Exercise 4 — the MFR penalty
# Difficulty 🔴🔴⚪ · Importance 🔵🔵⚪ · ~10 min
#
# For two SAEs `a ≠ b`: for each latent of `a`, its largest cosine similarity with a latent of
# `b`; average over the latents of `a`. Average that over every *ordered* pair `(a, b)` with
# `a ≠ b`, and return one minus it: 0 when all SAEs have the same directions, 1 when they
# share none. It is added to the loss, so it must stay differentiable. (The paper's version
# also re-initialises inactive latents; the AuxK loss plays that role here.)

# %%
def mfr_penalty(W_dec: torch.Tensor) -> torch.Tensor:
    """W_dec ``[n_saes, n_latents, d]`` (rows of any length) → a scalar tensor with a gradient."""
    # BEGIN SOLUTION hint: normalise the rows, cos = torch.einsum("aid,bjd->abij", W, W); max over j, mean over i gives
    # ... [n, n]; average the off-diagonal entries
    W = W_dec / W_dec.norm(dim=-1, keepdim=True)
    best = torch.einsum("aid,bjd->abij", W, W).max(dim=-1).values.mean(dim=-1)        # [n_saes, n_saes]
    off_diagonal = ~torch.eye(len(W), dtype=torch.bool, device=W.device)
    return 1 - best[off_diagonal].mean()
    # END SOLUTION


check_mfr_penalty(mfr_penalty)

# %% [markdown]
# Now the same SAEs again, from the *same* initial weights and the same stream of data, with
# `MFR_COEFF × mfr_penalty` added to the loss. Each MFR SAE is paired with an independent twin,
# so the comparison below is paired: any difference comes from the penalty.

# %%
mfr = SAE(D_TOY, width, n=N_MFR, k=TRUE_L0, seed=SEED + 100)
train_sae(mfr, data_stream, MFR_STEPS, batch_size=TOY_BATCH, lr=TOY_LR, seed=SEED,
          penalty=lambda saes: MFR_COEFF * mfr_penalty(saes.W_dec), desc="SAEs with MFR")


def recall_precision(saes: SAE) -> tuple[np.ndarray, np.ndarray]:
    """Share of true features found (cos ≥ 0.9), and share of live latents that are a true feature."""
    live = evaluate(saes, x_test)["freq"] > 0
    recall = [(feature_recovery(saes.W_dec[i].detach(), toy.features) >= 0.9).float().mean().item()
              for i in range(saes.n)]
    precision = [(feature_recovery(toy.features, saes.W_dec[i].detach())[live[i]] >= 0.9).float().mean().item()
                 for i in range(saes.n)]
    return np.array(recall), np.array(precision)


results = {"independent": recall_precision(independent), "MFR": recall_precision(mfr)}
with torch.no_grad():
    disagreement = {"independent": mfr_penalty(independent.W_dec).item(), "MFR": mfr_penalty(mfr.W_dec).item()}
fvus = {"independent": evaluate(independent, x_test)["fvu"].mean().item(),
        "MFR": evaluate(mfr, x_test)["fvu"].mean().item()}

fig, ax = plt.subplots(figsize=(6.5, 3.5))
for offset, (name, (recall, precision)) in enumerate(results.items()):
    ax.bar(np.arange(2) + 0.38 * offset, [recall.mean(), precision.mean()], width=0.38, label=name)
    ax.scatter(np.repeat(np.arange(2) + 0.38 * offset, N_MFR), np.concatenate([recall, precision]), color="k", s=8)
ax.set_xticks(np.arange(2) + 0.19, ["recall: true features found", "precision: live latents that are true"])
ax.set(ylim=(0.5, 1.02), title=f"{N_MFR} paired SAEs (dots: each SAE)")
ax.legend()
plt.show()
for name, (recall, precision) in results.items():
    print(f"{name:>11}: recall {np.round(recall, 3)}  precision {np.round(precision, 3)}  "
          f"penalty {disagreement[name]:.3f}  FVU {fvus[name]:.3f}")
MFR_PRECISION_GAIN = float((results["MFR"][1] - results["independent"][1]).mean())
MFR_RECALL_CHANGE = float((results["MFR"][0] - results["independent"][0]).mean())
print(f"MFR − independent: precision {MFR_PRECISION_GAIN:+.3f}, recall {MFR_RECALL_CHANGE:+.3f}")

# %% [markdown]
# What the claims below test: the penalty does what it says (the SAEs disagree less), recall
# stays where it was (within three points), and **precision rises**: fewer live latents point
# at something that is not a true feature. That would match the paper's motivation: MFR helps
# against latents that are not features of the input. The printed per-SAE numbers show how
# large the change is. It is not free (the penalty compares every pair of latents) and it
# need not be a gain in every setting: with exactly one latent per true feature, pulling
# latents together early in training can let the SAEs agree on wrong directions (try
# `MFR_WIDTH = 1`). With `N_MFR` paired SAEs, each claim is judged on the mean of the pairs.

# %%
claim("mfr_reduces_disagreement", disagreement["independent"] - disagreement["MFR"], ">", 0.0,
      why="MFR makes the SAEs agree more")
claim("mfr_keeps_recall", MFR_RECALL_CHANGE, ">", -0.03, why="MFR does not lose true features in this setting")
claim("mfr_raises_precision", MFR_PRECISION_GAIN, ">", 0.0,
      why="with spare latents, MFR raises the share of live latents that are true features")

# %% [markdown]
# ## 3. A real model
#
# Now the embedded SmolLM2-135M-Instruct (30 layers, `d_model` 576) reading real text that
# ships with Python: standard-library source files (one window of `TOKENS_PER_DOC` tokens
# each, starting at the first `def` or `class`) and docstrings (English prose). We split by
# *file*: the SAE trains on 60% of the files and every measurement below uses the other 40%.
#
# We read the residual stream entering layer `LAYER`. (At the fast scale that is layer 8 of 30,
# to keep the forward passes cheap; the full scale uses layer 15, the middle.)
#
# **Position 0.** Every sequence starts with the same token, `<|im_start|>`, and the model uses
# it as an *attention sink*: its residual vector is an outlier. How much of one depends on the
# layer: in this model it is several times the median norm up to layer 8 and more than a
# hundred times the median from layer 12 on. Let us look at our layer.

# %%
model = load_lm()
HOOK = f"blocks.{LAYER}.hook_resid_pre"
docs = stdlib_sources(N_FILES, seed=SEED)
train_docs, test_docs = split_documents(docs, test_fraction=0.4, seed=SEED)
train_corpus = labelled_code_corpus(model.tokenizer, train_docs, TOKENS_PER_DOC)
test_corpus = labelled_code_corpus(model.tokenizer, test_docs, TOKENS_PER_DOC)
test_files = {d.name for d in test_docs}
bos = model.tokenizer.bos_token_id
prose = []
for doc in stdlib_docstrings(4 * N_DOCSTRINGS, seed=SEED):
    ids = tokenize_with_offsets(model.tokenizer, doc.text)[0][:TOKENS_PER_DOC]
    if doc.name.split(":")[0] not in test_files and len(ids) >= 32 and len(prose) < N_DOCSTRINGS:
        prose.append(torch.tensor([bos, *ids]))
train_seqs, test_seqs = train_corpus.tokens + prose, test_corpus.tokens
print(f"train: {len(train_corpus.tokens)} code windows + {len(prose)} docstrings = "
      f"{sum(len(s) - 1 for s in train_seqs)} tokens; test: {len(test_seqs)} code windows = "
      f"{sum(len(s) - 1 for s in test_seqs)} tokens")

with torch.no_grad():
    first = collect_resid(model, test_seqs[:4], [LAYER], skip_first=False, progress=False)[LAYER]
norms = first.norm(dim=-1).view(4, -1)
print(f"residual norm at position 0: {norms[:, 0].mean():.0f}; at the other positions: median "
      f"{norms[:, 1:].median():.1f}  ({norms[:, 0].mean() / norms[:, 1:].median():.0f}x)")
claim("position0_outlier", norms[:, 0].mean() / norms[:, 1:].median(), ">", 5.0,
      why="the residual at position 0 is an outlier by far at this layer")

# %% [markdown]
# A vector several times longer than the rest has a squared norm tens of times larger, so it
# would dominate an SAE's squared error: the SAE would spend latents reconstructing a single,
# always identical token, and the normalisation below would shrink every other input. So we
# **drop position 0** from everything we train and measure (`collect_resid` does it), and when
# we splice the SAE into the model we leave position 0 untouched.
#
# **Normalisation.** We multiply all activations by one number so that their mean squared norm
# is `d_model` (as SAELens and `dictionary_learning` do). The learning rate and `k` then mean
# the same thing at every layer and in every model — which matters below, where the same
# recipe runs on control models whose activations have very different scales. The decoder
# bias starts at the mean activation and `W_enc` starts as `W_decᵀ` (Gao et al.).

# %%
acts = {"trained": (collect_resid(model, train_seqs, [LAYER])[LAYER], collect_resid(model, test_seqs, [LAYER])[LAYER])}


def fit_sae(train_acts: torch.Tensor, desc: str) -> tuple[SAE, float, float]:
    """The one recipe used for every model in this chapter: returns (sae, scale, seconds)."""
    scale_factor = (train_acts.shape[1] / train_acts.pow(2).sum(-1).mean()).sqrt().item()
    sae = SAE(train_acts.shape[1], EXPANSION * train_acts.shape[1], k=K_REAL, seed=SEED, device=DEVICE)
    sae.init_b_dec((train_acts * scale_factor).to(DEVICE))
    start = time.perf_counter()
    train_sae(sae, train_acts * scale_factor, SAE_STEPS, batch_size=SAE_BATCH, lr=SAE_LR, seed=SEED,
              dead_after=4 * SAE_BATCH, desc=desc)
    return sae, scale_factor, time.perf_counter() - start


sae, act_scale, seconds = fit_sae(acts["trained"][0], "SAE on the trained model")
THROUGHPUT = SAE_STEPS * SAE_BATCH / seconds
real = sae_metrics(sae, acts["trained"][1].to(DEVICE) * act_scale)
print(f"{sae.d_in} -> {sae.d_sae} latents, k = {K_REAL}: {SAE_STEPS} steps x {SAE_BATCH} in {seconds:.1f} s "
      f"= {THROUGHPUT:,.0f} activations/s on {SETUP.threads} thread(s)")
print(f"held-out tokens: L0 {real['l0']:.1f}, FVU {real['fvu']:.3f} (variance explained {1 - real['fvu']:.1%}), "
      f"dead {real['dead_fraction']:.1%}")

# %% [markdown]
# Why this is fast enough for a laptop: the encoder is one dense `[batch, 576] × [576, m]`
# product, but only `k` latents are active per token, so the decoder reads just those `k`
# rows of `W_dec` (`torch.nn.functional.embedding_bag`), forward and backward: about half the
# arithmetic of a dense decoder. The printout above gives this machine's throughput;
# collecting the activations from the model is the slower half of the work.
#
# ### Exercise 5 — how much of the model's loss survives the SAE?
# Difficulty 🔴🔴⚪ · Importance 🔵🔵🔵 · ~15 min
#
# Variance explained says how close `x̂` is to `x`, not whether the model can *use* `x̂`.
# Splice the SAE into the forward pass: replace the residual at `hook_name`, positions `1:`,
# by `reconstruct(residual[:, 1:])`, and measure the next-token cross-entropy. Compare with the
# clean model and with **zero-ablation** (the same positions replaced by zeros):
#
# `recovered = (ablated − spliced) / (ablated − clean)`: 1 if splicing costs nothing, 0 if it
# is as bad as deleting the residual stream.
#
# A forward hook is `fn(tensor, hook)` returning the new tensor; `model.run_with_hooks(tokens,
# fwd_hooks=[(hook_name, fn)])` returns the logits. Loss: the mean cross-entropy of
# `logits[:, :-1]` against `tokens[:, 1:]`.

# %%
def ce_loss_recovered(model, tokens: torch.Tensor, hook_name: str, reconstruct) -> dict:
    """tokens ``[batch, seq]`` (position 0 = BOS); reconstruct: ``[..., d] -> [..., d]``.
    Returns ``{"clean", "spliced", "ablated", "recovered"}`` as floats."""
    # BEGIN SOLUTION hint: one helper that builds a hook replacing resid[:, 1:] by f(resid[:, 1:]) on a clone; use it
    # ... with reconstruct and with torch.zeros_like; three forward passes under torch.no_grad()
    def next_token_loss(logits):
        return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1)).item()

    def replace_after_first(fn):
        def hook(resid, hook):
            resid = resid.clone()
            resid[:, 1:] = fn(resid[:, 1:])
            return resid
        return hook

    with torch.no_grad():
        clean = next_token_loss(model(tokens))
        spliced = next_token_loss(model.run_with_hooks(tokens, fwd_hooks=[(hook_name,
                                                                           replace_after_first(reconstruct))]))
        ablated = next_token_loss(model.run_with_hooks(tokens, fwd_hooks=[(hook_name,
                                                                           replace_after_first(torch.zeros_like))]))
    return {"clean": clean, "spliced": spliced, "ablated": ablated,
            "recovered": (ablated - spliced) / (ablated - clean)}
    # END SOLUTION


check_ce_loss_recovered(ce_loss_recovered)

# %%
def sae_reconstruct(resid: torch.Tensor) -> torch.Tensor:
    """Scale in, encode, decode, scale back out (any leading shape)."""
    flat = resid.reshape(-1, resid.shape[-1]) * act_scale
    return (sae(flat)[0] / act_scale).reshape(resid.shape)


# A few windows at a time: the logits over a 49k-token vocabulary are the largest tensors in this chapter.
ce_tokens = torch.stack(test_seqs[:N_CE_SEQS]).to(DEVICE)
yours = ce_loss_recovered(model, ce_tokens[:CE_BATCH], HOOK, sae_reconstruct)     # your function, on the first windows
# Zero-ablation is a harsh baseline: a residual stream of zeros is far off anything the model has seen, so almost any
# reconstruction "recovers" most of the loss. Replacing it by its mean over the training tokens is a fairer one.
mean_resid = acts["trained"][0].mean(0).to(DEVICE)
edits = {"clean": None, "spliced": sae_reconstruct, "ablated": torch.zeros_like,
         "mean-ablated": lambda r: mean_resid.to(r).expand_as(r).clone()}
per_window = {key: [] for key in edits}                                 # the loss of each held-out window
with torch.no_grad():
    for chunk in ce_tokens.split(CE_BATCH):
        for key, fn in edits.items():
            edit = (lambda r: r) if fn is None else (lambda r, fn=fn: torch.cat([r[:, :1], fn(r[:, 1:])], 1))
            with act.edit_resid(model, LAYER, edit):
                per_window[key].append(act.next_token_loss(model(chunk), chunk, per_token=True).mean(1).cpu())
per_window = {key: torch.cat(v).numpy() for key, v in per_window.items()}
assert all(abs(yours[key] - per_window[key][:CE_BATCH].mean()) < 1e-3 for key in ("clean", "spliced", "ablated")), \
    "your ce_loss_recovered should agree with utils.activations on the same windows"
ce = {key: float(v.mean()) for key, v in per_window.items()}


def recovered(clean, spliced, ablated):
    return (ablated.mean() - spliced.mean()) / (ablated.mean() - clean.mean())


CE_RECOVERED = recovered(per_window["clean"], per_window["spliced"], per_window["ablated"])
CE_RECOVERED_MEAN = recovered(per_window["clean"], per_window["spliced"], per_window["mean-ablated"])
DELTA_NATS = ce["spliced"] - ce["clean"]
print(f"next-token loss: clean {ce['clean']:.3f}, with the SAE {ce['spliced']:.3f} (+{DELTA_NATS:.3f} nats), "
      f"zero-ablated {ce['ablated']:.3f}, mean-ablated {ce['mean-ablated']:.3f} "
      f"({ce_tokens.numel() - len(ce_tokens)} predictions in {len(ce_tokens)} windows)")
print(f"loss recovered: {CE_RECOVERED:.1%} against zero-ablation, {CE_RECOVERED_MEAN:.1%} against mean-ablation")

freq = evaluate(sae, acts["trained"][1].to(DEVICE) * act_scale)["freq"][0].cpu()
DEAD, RARE, DENSE = (freq == 0).float().mean().item(), ((freq > 0) & (freq < 1e-3)).float().mean().item(), \
    (freq > 0.1).float().mean().item()
print(f"latents: dead {DEAD:.1%}, rare (< 0.1% of tokens) {RARE:.1%}, dense (> 10%) {DENSE:.1%}")
fig, ax = plt.subplots(figsize=(6.5, 3.5))
ax.hist(torch.log10(freq[freq > 0]).numpy(), bins=40)
ax.axvline(np.log10(K_REAL / sae.d_sae), color="k", ls=":", label="k / latents (the average)")
ax.set(xlabel="log10 firing frequency on held-out tokens", ylabel="latents",
       title=f"dead {DEAD:.1%} · rare (<0.1%) {RARE:.1%} · dense (>10%) {DENSE:.1%}")
ax.legend()
plt.show()

# %% [markdown]
# Two numbers, two questions. The FVU says how much of the residual's variance the SAE misses;
# the loss recovered says how much the model downstream suffers for it (both printed above).
# Which baseline the loss is recovered *against* matters: against zero-ablation nearly any
# reconstruction looks good, so the claim uses the mean-ablation baseline: the SAE must cost
# less than half the nats that replacing the residual by its mean costs, a bound that an SAE
# doing no better than the mean (a random decoder, say) cannot meet. The plain
# cost in nats is printed with its interval; at this scale it is a sizeable fraction of a nat,
# which is why no absolute bound is claimed. For scale, OpenAI's TopK GPT-2-small SAEs
# (128k latents, k = 32, billions of
# tokens) explain about 88–93% of the variance and recover 98.5–99.3% of the loss at middle
# layers; ours has 1,152 latents, has seen ten thousand tokens, and reads an early layer.
#
# The histogram is the latent frequency spectrum: how often each latent fires on held-out
# tokens. Dead latents (never) are what AuxK exists to prevent; in a run this short almost
# none die. Dense latents (on more than 10% of tokens) are worth a look in any SAE: they are
# often directions that most tokens share rather than features.

# %%
assert real["l0"] <= K_REAL + 1e-6, "a TopK SAE never has more than k active latents"       # by construction
claim("real_fvu", real["fvu"], "<", 0.5, why="the SAE explains most of the held-out variance")
windows = (per_window["clean"], per_window["spliced"], per_window["mean-ablated"])
delta_ci = stats.bootstrap_ci(per_window["spliced"] - per_window["clean"])
print(f"cost of splicing the SAE in: {DELTA_NATS:.3f} nats per token (95% CI {delta_ci[0]:.3f} to {delta_ci[1]:.3f}); "
      f"cost of mean-ablation: {ce['mean-ablated'] - ce['clean']:.3f} nats")
claim("ce_recovered_vs_mean_ablation", CE_RECOVERED_MEAN, ">", 0.5,
      ci=stats.bootstrap_ci(windows, recovered),
      why="splicing the SAE in costs less than half the nats that mean-ablation costs (interval over windows)")
claim("dead_latents_rare", DEAD, "<", 0.1, why="AuxK keeps dead latents rare")

# %% [markdown]
# ## 4. Looking at latents
#
# A latent's **top-activating contexts**: the held-out tokens where it fires hardest, with a
# few tokens around them. We use only positions `≥ MIN_POS` (see part 5 for why).

# %%
test_types = test_corpus.flat_types()                                    # token id of every held-out token
positions = np.concatenate([np.arange(1, len(s)) for s in test_seqs])     # its position in its window
candidates = np.nonzero(positions >= MIN_POS)[0]
window_ends = np.cumsum([len(s) - 1 for s in test_seqs])                 # where each window's tokens end
tokenizer = model.tokenizer
token_text = tokenizer.convert_ids_to_tokens(list(range(model.cfg.d_vocab)))


def show(token_id: int) -> str:
    return tokenizer.convert_tokens_to_string([token_text[token_id]]).replace("\n", "⏎")


def context(flat_index: int, before: int = 10, after: int = 3) -> str:
    seq = int(np.searchsorted(window_ends, flat_index, side="right"))
    pos = int(positions[flat_index])
    ids = test_seqs[seq].tolist()
    left = "".join(show(t) for t in ids[max(1, pos - before): pos])
    right = "".join(show(t) for t in ids[pos + 1: pos + 1 + after])
    return f"{left}【{show(ids[pos])}】{right}"


def top_rows(sae_: SAE, test_acts: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
    """Top-N_TOP activations of every latent among the candidate positions; rows index the held-out tokens."""
    values, rows = top_activations(sae_, test_acts[torch.from_numpy(candidates)].to(DEVICE), N_TOP)
    return values.cpu(), candidates[rows.cpu().numpy()]


top_values, top_index = top_rows(sae, acts["trained"][1] * act_scale)
scored = (top_values[:, -1] > 0).numpy()                 # latents with at least N_TOP activations to look at
print(f"{scored.sum()} of {sae.d_sae} latents fire on at least {N_TOP} held-out candidate tokens")

# %% [markdown]
# Which token *kinds* are these? Python's tokenizer labels every held-out token (keyword, name,
# operator, number, string, comment, or none: whitespace and tokens that straddle two kinds).
#
# ### An automatic interpretability proxy
#
# Reading contexts does not scale, so we score latents automatically. The naive score — do a
# latent's top activations share a label? — rewards latents that fire on one token: every
# occurrence of `def` is a keyword. It measures token identity, which a model needs no
# training to carry (the token embedding has it). We want the share of agreement that token
# identity **cannot** explain.
#
# For a latent's `N` top activations, take all pairs `i ≠ j`:
# - **observed**: the share of pairs that carry the same label;
# - **expected**: the same share if the labels were shuffled among the occurrences of each
#   token type in the whole held-out set. Two occurrences of *different* types `a, b` agree with
#   probability `Σ_c q_a(c) q_b(c)` (`q_a` = the label distribution of type `a`); two different
#   occurrences of the *same* type agree with probability `Σ_c n_ac (n_ac − 1) / (n_a (n_a − 1))`
#   (drawn without replacement from its `n_a` occurrences).
#
# **gain = observed − expected.** A latent that fires on a token wherever it occurs scores
# about 0, whatever the labels; a latent that picks, say, only the occurrences of `the` inside
# comments scores above 0. Under the
# shuffling null the expected gain is exactly 0, so a control that carries no information
# beyond token identity scores 0 on average.
#
# ### Exercise 6 — purity beyond token identity
# Difficulty 🔴🔴🔴 · Importance 🔵🔵🔵 · ~20 min

# %%
def purity_gain(top_labels: torch.Tensor, top_types: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """top_labels, top_types: long ``[n_latents, N]`` (label and token type of each top activation);
    counts ``[n_types, n_labels]``: how often each type carries each label in the whole held-out set.
    Returns float ``[n_latents]``: observed minus expected share of same-label pairs (i ≠ j)."""
    # BEGIN SOLUTION hint: observed from label counts per row: (Σ_c c_c² − N) / (N(N−1)); expected: with Q =
    # ... q[top_types], Σ over pairs of Q_i·Q_j is |ΣQ|² − Σ|Q_i|²; for same-type pairs swap q_a·q_a for Σ
    # ... n(n−1)/(n_a(n_a−1))
    counts = counts.double()
    N = top_labels.shape[1]
    n = counts.sum(1)
    q = counts / n.clamp_min(1).unsqueeze(1)
    label_counts = F.one_hot(top_labels, counts.shape[1]).double().sum(1)              # [L, C]
    observed = ((label_counts ** 2).sum(-1) - N) / (N * (N - 1))
    Q = q[top_types]                                                                   # [L, N, C]
    pair_agree = Q @ Q.transpose(1, 2)                                                 # [L, N, N]: Q_i · Q_j
    same_type = top_types.unsqueeze(2) == top_types.unsqueeze(1)
    without_replacement = ((counts * (counts - 1)).sum(1) / (n * (n - 1)).clamp_min(1))[top_types]   # [L, N]
    pair_agree = torch.where(same_type, without_replacement.unsqueeze(2).expand(-1, -1, N), pair_agree)
    off_diagonal = ~torch.eye(N, dtype=torch.bool, device=Q.device)
    expected = (pair_agree * off_diagonal).sum((1, 2)) / (N * (N - 1))
    return observed - expected
    # END SOLUTION


check_purity_gain(purity_gain)

# %% [markdown]
# Two labels, two kinds of context:
# - **token kind** (Python's category of the token *in this place*): `return` is a keyword in
#   code and part of a string in a docstring; the label depends on where in the file we are;
# - **previous token**: which token came just before. The same `(` after `print` and after
#   `def f` is the same token type with different previous tokens.
#
# We also print the naive score (observed agreement on token kind, no baseline) and the share
# of same-type pairs (how much a latent is about one token).

# %%
CATEGORY_NAMES = ["keyword", "name", "operator", "number", "string", "comment", "none"]
category = test_corpus.flat("category").copy()
category[category < 0] = len(CATEGORY_NAMES) - 1
previous = np.concatenate([s[:-1].numpy() for s in test_seqs])


def as_index(values: np.ndarray) -> tuple[np.ndarray, int]:
    uniques, index = np.unique(values, return_inverse=True)
    return index, len(uniques)


def label_scores(types: np.ndarray, labels: np.ndarray, rows: np.ndarray, chunk: int = 64) -> torch.Tensor:
    """purity_gain for every row of ``rows [n_latents, N]`` (indices into the held-out tokens).
    Only the token types that occur among the top activations need their label counts."""
    needed = np.isin(types, types[rows])
    type_index, n_types = as_index(types[needed])
    label_index, n_labels = as_index(labels[needed])
    counts = torch.zeros(n_types, n_labels, dtype=torch.float64)
    counts.index_put_((torch.from_numpy(type_index), torch.from_numpy(label_index)),
                      torch.ones(len(type_index), dtype=torch.float64), accumulate=True)
    position = np.cumsum(needed) - 1                                   # held-out index -> index among the needed
    t, lab = torch.from_numpy(type_index[position[rows]]), torch.from_numpy(label_index[position[rows]])
    return torch.cat([purity_gain(lab[i: i + chunk], t[i: i + chunk], counts) for i in range(0, len(rows), chunk)])


def proxy(rows: np.ndarray, order: np.ndarray | None = None) -> dict:
    """All scores for latents with top-activation rows ``rows``; ``order`` maps rows to the labels'
    positions (the shuffled-text control carries each token's labels along)."""
    order = np.arange(len(test_types)) if order is None else order
    types, cat, prev = test_types[order], category[order], previous[order]
    same_label = np.array([(np.bincount(r, minlength=7) ** 2).sum() - N_TOP for r in cat[rows]]) / (N_TOP * (N_TOP - 1))
    same_type = np.array([(np.unique(r, return_counts=True)[1] ** 2).sum() - N_TOP for r in types[rows]]) \
        / (N_TOP * (N_TOP - 1))
    return {"naive token-kind purity": same_label, "same-token pairs": same_type,
            "token-kind gain": label_scores(types, cat, rows).numpy(),
            "previous-token gain": label_scores(types, prev, rows).numpy()}


scores = {"trained": proxy(top_index[scored])}
for name, values in scores["trained"].items():
    print(f"{name:>24}: mean {values.mean():.3f}, largest {values.max():.2f}")
claim("some_previous_token_latents", scores["trained"]["previous-token gain"].max(), ">", 0.5,
      why="some latents are clearly about the previous token")

# %%
best = np.argsort(-scores["trained"]["previous-token gain"])[:3]
rng = np.random.default_rng(SEED)
shown = [*np.nonzero(scored)[0][best], *rng.choice(np.nonzero(scored)[0], size=2, replace=False)]
for number, latent in enumerate(shown):
    row = np.nonzero(np.nonzero(scored)[0] == latent)[0][0]
    why = "high previous-token gain" if number < 3 else "a random latent"
    print(f"latent {latent} ({why}: token kind {scores['trained']['token-kind gain'][row]:+.2f}, "
          f"previous token {scores['trained']['previous-token gain'][row]:+.2f})")
    for value, index in list(zip(top_values[latent].tolist(), top_index[latent]))[:4]:
        print(f"   {value:5.1f}  {CATEGORY_NAMES[category[index]]:>8}  {context(index)!r}")

# %% [markdown]
# Read a few. Latents with a high previous-token gain fire on tokens *in a place*: one token
# after another particular token, where the same token elsewhere leaves them silent. A random
# latent is often a plain token detector, or a mixture you would struggle to name.
#
# **Steering (optional).** A latent's decoder row is a direction in the residual stream. We take
# the latent whose top activations are most often followed by one and the same word-like token
# (so the contexts it fires in predict that token), add its direction (scaled back to the
# model's units) at every position after the first, and watch the next-token prediction at the
# end of an unrelated prompt. Any push of this size moves the prediction somewhere, and a token
# that starts far below the uniform level can rise by chance; so the same push is also made
# along `N_RANDOM_DIRECTIONS` random directions of the same norm, and we compare the latent's
# rise with the 95th percentile of theirs.

# %%
following = np.where(np.isin(np.arange(1, len(test_types) + 1), window_ends), -1, np.roll(test_types, -1))
next_tokens = following[top_index[scored]]                                   # [scored latents, N_TOP]
modes = [np.unique(r[r >= 0], return_counts=True) for r in next_tokens]
share = np.array([counts.max() / N_TOP if len(counts) and any(ch.isalnum() for ch in show(int(ids[counts.argmax()])))
                  else 0.0 for ids, counts in modes])
pick = int(np.argmax(share))
latent, target = int(np.nonzero(scored)[0][pick]), int(modes[pick][0][modes[pick][1].argmax()])
print(f"latent {latent}: {share[pick]:.0%} of its top activations are followed by {show(target)!r}")
for value, index in list(zip(top_values[latent].tolist(), top_index[latent]))[:3]:
    print(f"   {value:5.1f}  {context(index)!r}")

direction = sae.W_dec[0, latent].detach() / act_scale              # on DEVICE, like the model
typical = float(top_values[latent].mean())
prompt = model.to_tokens("import os\n\n\ndef read(path):\n    with open(path) as f:\n        data = f.read()\n")
kl = []
with torch.no_grad():
    base = model(prompt)[0, -1].log_softmax(-1)
    print(f"no steering: log p({show(target)!r}) = {base[target]:.2f}; "
          f"top tokens {[show(t) for t in base.topk(5).indices.tolist()]}")
    for alpha in [1.0, 2.0, 4.0]:
        with act.steer(model, LAYER, direction, alpha * typical, skip_first=True):
            logp = model(prompt)[0, -1].log_softmax(-1)
        kl.append(float(act.kl_from_clean(base, logp)))
        print(f"x{alpha:g} its typical activation: KL {kl[-1]:.2f}; log p({show(target)!r}) = {logp[target]:.2f}; "
              f"top tokens {[show(t) for t in logp.topk(5).indices.tolist()]}")
    push = alpha * typical * direction                                       # the largest push, along the latent
    random_push = torch.randn(N_RANDOM_DIRECTIONS, push.shape[0], generator=torch.Generator().manual_seed(SEED))
    random_push = (random_push / random_push.norm(dim=-1, keepdim=True) * push.norm().cpu()).to(push)
    require_equal_norm(random_push, push, what="random steering directions")
    with act.edit_resid(model, LAYER, lambda r: torch.cat([r[:, :1], r[:, 1:] + random_push[:, None].to(r)], 1)):
        random_logp = model(prompt.expand(N_RANDOM_DIRECTIONS, -1))[:, -1].log_softmax(-1)
random_rise = (random_logp[:, target] - base[target]).cpu().numpy()
LATENT_RISE = float(logp[target] - base[target])
print(f"rise of log p({show(target)!r}) at x{alpha:g}: latent {LATENT_RISE:+.2f}; {N_RANDOM_DIRECTIONS} random "
      f"directions of the same norm: median {np.median(random_rise):+.2f}, "
      f"95th percentile {np.percentile(random_rise, 95):+.2f}")
claim("latent_push_kl_grows", min(np.diff(kl)), ">", 0.0,
      why="a larger push along the decoder direction moves the prediction more")
beats = LATENT_RISE > np.percentile(random_rise, 95)
print(f"uniform level: log(1/{model.cfg.d_vocab}) = {-np.log(model.cfg.d_vocab):.2f}; the latent "
      f"{'beats' if beats else 'does not beat'} 95% of the random pushes here")

# %% [markdown]
# Read the last line before reading anything into the rise. The token starts far below the
# uniform level, and a push this large flattens the whole distribution, so it rises under
# almost any push: compare the printed median rise of random directions of the same norm. Whether the
# latent's own direction beats them depends on the run (the seed picks the latent), so this
# chapter makes **no claim** that latent steering works here; only that a larger push moves the
# prediction more. A fair test would start from a token the model finds plausible, or compare
# pushes at equal KL rather than equal norm.

# %% [markdown]
# ## 5. Controls: a model feature, or a data feature?
#
# An SAE trained on *any* data with structure finds structure. Before we credit the model, we
# run the **same recipe** (same layer, tokens, normalisation, SAE size, steps, seed) on:
# - **shuffled text**: the same tokens in random order, run through the trained model. Token
#   identity and its frequencies are intact; the context is gone. Every token keeps the labels
#   it had in its real place, so the proxy can be computed.
# - **a randomly initialised model** (`random_weights_copy`) reading the real text;
# - **a spectrum-matched model**: every weight matrix replaced by a random one with the same
#   singular values (chapter 02), reading the real text. Only the matrices that feed layer
#   `LAYER` matter here, so only those are replaced (the library's `spectrum_matched_copy`
#   does every layer, and the big embedding dominates its cost either way).
#
# The model is turned into each control in place, to stay within 2 GB.

# %%
generator = torch.Generator().manual_seed(SEED)


def shuffle_tokens(seqs: list[torch.Tensor]) -> tuple[list[torch.Tensor], np.ndarray]:
    """The same tokens in a random order across all sequences (position 0 kept); returns the new
    sequences and, for every new token, the index of the original token it came from."""
    flat = torch.cat([s[1:] for s in seqs])
    order = torch.randperm(len(flat), generator=generator)
    require_not_identity(order, what="token shuffle")
    pieces = torch.split(flat[order], [len(s) - 1 for s in seqs])
    return [torch.cat([s[:1], piece]) for s, piece in zip(seqs, pieces)], order.numpy()


shuffled_train, _ = shuffle_tokens(train_seqs)
shuffled_test, shuffled_order = shuffle_tokens(test_seqs)
acts["shuffled text"] = (collect_resid(model, shuffled_train, [LAYER])[LAYER],
                         collect_resid(model, shuffled_test, [LAYER])[LAYER])


@torch.no_grad()
def spectrum_match_below(model, layer: int, seed: int) -> None:
    """In place: every weight matrix of the embedding and of layers < ``layer`` → same singular values,
    random vectors."""
    matrices_generator = torch.Generator().manual_seed(seed)
    for name, weight in tqdm(weight_matrices(model).items(), desc="spectrum matching", mininterval=1.0):
        parts = name.split(".")
        if "layers" in parts and int(parts[parts.index("layers") + 1]) >= layer:
            continue
        weight.copy_(spectrum_matched(weight.cpu(), matrices_generator).to(weight.device))


spectrum_match_below(model, LAYER, SEED)
acts["spectrum-matched"] = (collect_resid(model, train_seqs, [LAYER])[LAYER],
                            collect_resid(model, test_seqs, [LAYER])[LAYER])
random_weights_copy(model, seed=SEED, inplace=True)
acts["random init"] = (collect_resid(model, train_seqs, [LAYER])[LAYER],
                       collect_resid(model, test_seqs, [LAYER])[LAYER])
del model
gc.collect()

# %%
fvu = {"trained": real["fvu"]}
for name in ["shuffled text", "spectrum-matched", "random init"]:
    control_sae, control_scale, _ = fit_sae(acts[name][0], f"SAE on {name}")
    fvu[name] = sae_metrics(control_sae, acts[name][1].to(DEVICE) * control_scale)["fvu"]
    values, rows = top_rows(control_sae, acts[name][1] * control_scale)
    keep = (values[:, -1] > 0).numpy()
    scores[name] = proxy(rows[keep], shuffled_order if name == "shuffled text" else None)

names = list(scores)
metrics = ["naive token-kind purity", "same-token pairs", "token-kind gain", "previous-token gain"]
fig, axes = plt.subplots(1, len(metrics) + 1, figsize=(18, 3.6))
for ax, metric in zip(axes, metrics):
    means = [scores[n][metric].mean() for n in names]
    ax.bar(range(len(names)), means, color=["C0", "C1", "C2", "C3"])
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_title(metric)
    ax.axhline(0, color="k", lw=0.5)
axes[-1].bar(range(len(names)), [fvu[n] for n in names], color=["C0", "C1", "C2", "C3"])
axes[-1].set_xticks(range(len(names)), names, rotation=30, ha="right")
axes[-1].set_title("FVU on held-out tokens (lower = better)")
plt.tight_layout()
plt.show()
for n in names:
    gain = scores[n]["previous-token gain"]
    print(f"{n:>16}: FVU {fvu[n]:.3f} | " + " | ".join(f"{m} {scores[n][m].mean():+.3f}" for m in metrics)
          + f" (± {gain.std() / np.sqrt(len(gain)):.3f}) | {len(gain)} latents scored")

fig, ax = plt.subplots(figsize=(7, 3.5))
bins = np.linspace(-0.2, 1.0, 49)
for n in names:
    ax.hist(scores[n]["previous-token gain"], bins=bins, histtype="step", label=n, lw=1.5)
ax.set(yscale="log", xlabel="previous-token gain of one latent", ylabel="latents",
       title="the tail of context latents belongs to the trained model")
ax.legend()
plt.show()

# %% [markdown]
# What the bars say, in the order you would have tried them:
# 1. **Naive purity** hardly separates the real model from **shuffled text**: an SAE on the
#    trained model reading word salad finds token detectors whose top activations share a token
#    kind about as often. On its own, this score would credit structure to data with none.
# 2. **Token-kind gain** removes token identity. Shuffled text drops to about 0, as it must.
#    But the **randomly initialised model scores higher than the trained one.** A random
#    transformer is not blind to context: with near-uniform attention each position receives
#    an average of all the tokens before it, and "we are inside a long docstring" is written
#    all over that average. Contextual labels that the *bag of preceding tokens* predicts are
#    no test of what a model learned. This is the trap Heap et al. describe.
# 3. **Previous-token gain** asks for context that needs the *order* of tokens: which token
#    came just before. A random model's averaging dilutes it, shuffled text has no real
#    previous token, and the spectrum-matched model has the gains but not the directions. Only
#    the trained model's SAE scores clearly above 0. (This is also why only positions `≥ MIN_POS`
#    compete: in the first few positions the previous token is a large part of any average,
#    and a random model would score there for free. We set `MIN_POS` before measuring.)
# 4. **Reconstruction** separates the random models in the other direction: their activations
#    are much *harder* to compress sparsely (higher FVU), while shuffled text is as easy as real
#    text.
#
# So we pick the previous-token gain as the proxy, claim that the trained model beats every
# control on it (the difference of mean gains, with an interval over latents), and claim the
# two pitfalls we measured. The printed means show how small the gains are on average: most
# latents are about the token itself; the interesting ones are the tail (the histogram).

# %%
def mean_difference(a: np.ndarray, b: np.ndarray) -> tuple[float, tuple[float, float]]:
    """mean(a) − mean(b) for two independent sets of latents, with a bootstrap interval resampling latents."""
    pooled, is_a = np.concatenate([a, b]), np.r_[np.ones(len(a), bool), np.zeros(len(b), bool)]
    ci = stats.bootstrap_ci((pooled, is_a), lambda v, m: v[m].mean() - v[~m].mean())
    return float(a.mean() - b.mean()), ci


REAL_GAIN = float(scores["trained"]["previous-token gain"].mean())
for name in ["shuffled text", "spectrum-matched", "random init"]:
    diff, ci = mean_difference(scores["trained"]["previous-token gain"], scores[name]["previous-token gain"])
    claim(f"previous_token_gain_beats_{name.replace(' ', '_').replace('-', '_')}", diff, ">", 0.0, ci=ci,
          why=f"the trained model's SAE scores higher on the previous-token gain than the {name} control")
shuffled_kind = scores["shuffled text"]["token-kind gain"]
claim("shuffled_token_kind_gain_near_zero", abs(shuffled_kind.mean()), "<", 0.01,
      ci=stats.bootstrap_ci(shuffled_kind, lambda v: abs(v.mean())),
      why="with no context in the input, nothing beats token identity")
diff, ci = mean_difference(scores["random init"]["token-kind gain"], scores["trained"]["token-kind gain"])
claim("random_init_wins_token_kind", diff, ">", 0.0, ci=ci,
      why="the bag-of-preceding-tokens pitfall: the random model scores higher on a label the prefix average predicts")
claim("random_models_harder_to_reconstruct", min(fvu["random init"], fvu["spectrum-matched"]) - fvu["trained"],
      ">", 0.2,
      why="random models' activations are much harder to reconstruct sparsely")

# %% [markdown]
# ## 6. Published SAEs and the full scale
#
# Published SAEs (Gemma Scope, OpenAI's GPT-2 SAEs, the SAELens releases) ship as a weights
# file plus a config. `utils.sae.load_published_sae` reads SAELens's folder format
# (`cfg.json` + `sae_weights.safetensors`) and Gemma Scope's `params.npz` (JumpReLU: a latent
# fires only above its own threshold). Without the internet we test it on our own SAE,
# written in the same format.

# %%
with tempfile.TemporaryDirectory() as folder:
    save_sae(sae, folder, hook_name=HOOK, model_name="SmolLM2-135M-Instruct", activation_scale=act_scale)
    loaded, cfg = load_published_sae(folder)
    with torch.no_grad():
        x = acts["trained"][1][:512] * act_scale
        same = torch.allclose(loaded(x)[0], sae(x.to(DEVICE))[0].cpu(), atol=1e-5)
print(cfg)
print("the loaded SAE reconstructs exactly like ours:", same)
assert same, "saving and loading must not change the SAE"

# %% [markdown]
# On a machine with the hub, download a Gemma Scope SAE (`google/gemma-scope-2b-pt-res`, files
# `layer_12/width_16k/average_l0_82/params.npz`) and a matching model
# (`load_lm("google/gemma-2-2b")`): `load_published_sae(path_to_params_npz)` gives an `SAE`
# that every function of this chapter accepts. Gemma Scope expects raw activations (no scale).

# %% [markdown]
# ## What you measured

# %%
del acts
gc.collect()
record("03_sparse_autoencoders",
       toy_recovered_at_true_l0=TOY_RECOVERED, toy_fvu_at_true_l0=float(topk["fvu"][right]),
       toy_recovered_by_k=dict(zip(K_SWEEP, np.round(topk["recovered"], 3).tolist())),
       toy_fvu_by_k=dict(zip(K_SWEEP, np.round(topk["fvu"], 3).tolist())),
       toy_l0_at_true_l0=float(topk["l0"][right]), toy_dead_at_true_l0=float(topk["dead"][right]),
       toy_throughput_inputs_per_s=TOY_THROUGHPUT,
       agreement_true_share=p_true_agreed, no_agreement_true_share=p_true_alone,
       mfr_recall=float(results["MFR"][0].mean()), independent_recall=float(results["independent"][0].mean()),
       mfr_precision=float(results["MFR"][1].mean()), independent_precision=float(results["independent"][1].mean()),
       real_layer=LAYER, real_latents=sae.d_sae, real_l0=real["l0"], real_fvu=real["fvu"],
       real_dead=real["dead_fraction"], real_rare=RARE, real_dense=DENSE, ce_clean=ce["clean"],
       ce_spliced=ce["spliced"], ce_ablated=ce["ablated"], ce_mean_ablated=ce["mean-ablated"],
       ce_recovered=CE_RECOVERED,
       ce_recovered_vs_mean_ablation=CE_RECOVERED_MEAN, ce_delta_nats=DELTA_NATS, ce_delta_nats_ci=delta_ci,
       latent_steering_rise=LATENT_RISE, random_push_rise_p95=float(np.percentile(random_rise, 95)),
       sae_throughput_acts_per_s=THROUGHPUT,
       fvu_by_model=fvu,
       previous_token_gain={n: float(scores[n]["previous-token gain"].mean()) for n in names},
       token_kind_gain={n: float(scores[n]["token-kind gain"].mean()) for n in names},
       naive_purity={n: float(scores[n]["naive token-kind purity"].mean()) for n in names})

# %% [markdown]
# ## Going further
#
# - **Full scale** (`GLASSBOX_SCALE=full`, a GPU): the middle layer (15), about 300k tokens per
#   model, 9,216 latents and 3,000 steps of 4,096. Do the conclusions of part 5 hold? Does the
#   trained model's SAE pull further ahead as the SAE gets wider?
# - **Other labels for the proxy**: bracket depth (`labelled_code_corpus` has it as `"depth"`),
#   whether a name is being defined or used (`ast`). Predict before measuring whether a random
#   model's prefix average could carry each one.
# - **Other architectures**: BatchTopK (Bussmann, Leask & Nanda, arXiv 2412.06410), JumpReLU
#   (Rajamanoharan et al., arXiv 2407.14435), Matryoshka SAEs (Bussmann et al., arXiv
#   2503.17547). Each is a few lines in `SAE.activate`; compare them on the toy frontier first.
# - **SAEBench** (Karvonen et al., arXiv 2503.09532) evaluates SAEs on eight tasks and finds
#   that the sparsity–fidelity frontier does not predict the others well: a better FVU at a
#   given L0 is not a better SAE. Its sparse-probing task is one you can run here with
#   chapter 02's probes on SAE latents instead of raw activations.
# - **Finding the right L0**: Chanin & Garriga-Alonso (arXiv 2508.16560) give a proxy for it
#   that needs no ground truth. Test it on the toy data, where you know the answer.

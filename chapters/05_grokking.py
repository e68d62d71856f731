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
# # 05 · Grokking: train it live, find the algorithm, measure the progress
#
# A small transformer learns `a + b mod p`. It first memorises its training pairs, scoring
# 100% on them and no better than chance on new ones. Then, hundreds or thousands of steps
# later and with no change in the training loss worth mentioning, it *generalises*. This
# delayed jump is called **grokking**. In this chapter you train it yourself, in the notebook,
# and then open the model up to see the algorithm it found and measure the hidden progress
# that came before the jump.
#
# **What you will learn**
# - train a one-layer transformer on modular addition, full batch, with weight decay, and
#   make each training step cheap by computing only the position the loss reads;
# - read the grokking curves: loss, accuracy, the size of the weights, and the three phases;
# - build a Fourier basis over the integers mod p and find the handful of *key frequencies*
#   the network computes with: in its embedding, in every MLP neuron, in its logits;
# - measure *progress measures* (restricted and excluded loss, Fourier sparsity) at every
#   checkpoint, and test whether they move before the test accuracy does;
# - test the explanation causally inside the network: remove the key frequencies from the
#   embedding, ablate the neurons tuned to each frequency, read the neuron-logit map, each
#   against random interventions of the same size;
# - check it against controls: no weight decay, shuffled labels (a memorising solution whose
#   weights we compare with the grokked one's), corrupted labels tracked over training.
#
# **Papers**
# - Power et al. 2022, "Grokking: Generalization Beyond Overfitting on Small Algorithmic
#   Datasets" (arXiv 2201.02177);
# - Nanda, Chan, Lieberum, Smith, Steinhardt 2023, "Progress measures for grokking via
#   mechanistic interpretability" (arXiv 2301.05217), whose model and measures we follow;
# - Varma et al. 2023, "Explaining grokking through circuit efficiency" (arXiv 2309.02390);
# - Doshi et al. 2023, "To grok or not to grok: Disentangling generalization and memorization
#   on corrupted algorithmic datasets" (arXiv 2310.13061).
#
# **Time**: about 75 minutes. **Runs on**: a laptop CPU (fast scale: p = 47, about two
# minutes of compute for the four training runs) or a GPU (full scale: the published
# configuration, p = 113 with 30% of the pairs for training).

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
SETUP = setup("05_grokking")

# %%
import copy
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from utils import stats
from utils.checks.grokking import (check_fourier_basis, check_freq_norms, check_key_freq_component,
                                   check_neuron_freq_fractions, check_progress_measures, check_remove_frequencies)
from utils.controls import require_labels_shuffled
from utils.grokking import OneLayerTransformer, first_step, loss_f64, make_data, train_grokking
from utils.plotting import heatmap, slider_or_static
from utils.report import claim, record
from utils.training import column

# %% tags=["parameters"]
P = scale(fast=47, full=113)                 # the modulus (a prime)
FRAC_TRAIN = scale(fast=0.4, full=0.3)       # share of the p*p pairs used for training
LR = scale(fast=3e-3, full=1e-3)             # AdamW learning rate
WEIGHT_DECAY = scale(fast=2.0, full=1.0)     # AdamW weight decay
STEPS = scale(fast=1500, full=15_000, smoke=60)  # full-batch training steps, the same for every run
LOG_EVERY = scale(fast=20, full=100)         # measure train/test loss every ... steps
CHECKPOINT_EVERY = scale(fast=20, full=100)  # keep the weights every ... steps (its own cadence, not LOG_EVERY's)
CORRUPT_FRAC = 0.02                          # share of training labels made wrong in the last control
N_RANDOM_SETS = scale(fast=50, full=100, smoke=3)  # random frequency sets in the ablation control

# %% [markdown]
# ## 1. Train it
#
# **The task.** Every pair `(a, b)` with `0 <= a, b < p` becomes the three-token input
# `a b =` and the answer `(a + b) mod p`. A random `FRAC_TRAIN` of the `p²` pairs is the
# training set; the rest is the test set. There is nothing else to learn from: the network
# sees each training pair once per step (full batch), and the test pairs never.
#
# **The model** (`utils/grokking.py`, about 60 lines; read it) is the one of Nanda et al.:
# token and position embeddings, one attention layer with 4 heads, one ReLU MLP of width
# 512, an unembedding onto the `p` answers, no LayerNorm and no attention biases. The
# published run uses AdamW with learning rate 1e-3, betas (0.9, 0.98) and a large weight
# decay of 1.0. At the fast scale we take a smaller prime (47 instead of 113), 40% of the
# pairs instead of 30%, and a stronger push from the optimiser (learning rate 3e-3, weight
# decay 2.0) so that the whole story fits in a few minutes of a laptop's CPU.
#
# **Two details that matter.**
# - The loss is computed in float64 (`loss_f64`). Once the training set is memorised the
#   correct-answer probability is within 1e-8 of 1; in float32 the loss then rounds to
#   exactly 0 and training becomes unstable (loss spikes, see Prieto et al. 2025, "Grokking at
#   the edge of numerical stability", arXiv 2501.04697).
# - The loss only reads the logits at the last position (`=`). So the model computes the
#   query, the MLP and the unembedding at that position only; positions 0 and 1 are needed
#   as keys and values, nothing more. (A second saving: each position holds a single
#   token, so keys, values and queries are computed once per vocabulary entry and looked up,
#   instead of once per training pair.) How much time this saves depends on the machine, so
#   it is measured by `make benchmark` (`tests/benchmarks/grokking.py`), not here; here we check
#   that it does not change the numbers.

# %%
data = make_data(P, FRAC_TRAIN, seed=SETUP.seed)
print(f"p = {P}: {len(data.train_idx)} training pairs, {len(data.test_idx)} test pairs")
print("first three inputs:", data.tokens[:3].tolist(), "answers:", data.labels[:3].tolist())

with torch.no_grad():
    probe = OneLayerTransformer(P)
    same = torch.allclose(probe(data.tokens, last_only=True), probe(data.tokens, last_only=False)[:, -1], atol=1e-5)
print("same logits at the last position:", same)

# %%
assert same, "computing only the last position must not change the logits it produces"

# %% [markdown]
# Now the real run. `train_grokking` is a plain loop over full-batch AdamW steps (the
# course's `utils.training.train`) with a progress bar; every `LOG_EVERY` steps it measures
# loss and accuracy on both splits and the sum of squared weights, and every
# `CHECKPOINT_EVERY` steps it keeps a copy of the weights for the analysis.

# %%
run = train_grokking(data, STEPS, seed=SETUP.seed, lr=LR, weight_decay=WEIGHT_DECAY, log_every=LOG_EVERY,
                     checkpoint_every=CHECKPOINT_EVERY, desc="weight decay")
model, history = run.model, run.history
steps = np.array(column(history, "step"))
print(f"{STEPS} steps in {run.seconds:.0f} s; final train acc {history[-1]['train_acc']:.3f}, "
      f"test acc {history[-1]['test_acc']:.3f}")

# %% [markdown]
# ## 2. The grokking curves
#
# We name the phases by what we measure:
# - **memorisation** lasts until the training accuracy reaches 99%;
# - **circuit formation** follows, while the test accuracy is still below 50%;
# - **cleanup** runs until the test accuracy passes 95%: the step at which we say the model *grokked*.
#
# (Nanda et al. place their phase boundaries with the progress measures of part 4; these
# accuracy thresholds are a simpler stand-in that is easy to read off a curve. They are only a
# reading aid: since they are defined from the test accuracy, they cannot be used to show that
# anything *predicts* it. Part 4 measures that against the test accuracy itself.)

# %%
MEM_STEP = first_step(history, "train_acc", 0.99)
HALF_STEP = first_step(history, "test_acc", 0.5)
GROK_STEP = first_step(history, "test_acc", 0.95)
if None in (MEM_STEP, HALF_STEP, GROK_STEP):
    # Only a run that stopped short (a smoke run, other hyper-parameters): the phases that did not
    # happen are placed at the last step, and the claims that need them are reported as failed.
    print("this run did not memorise, reach 50% and grok within STEPS: missing phases are put at the last step")
    MEM_STEP, HALF_STEP, GROK_STEP = (history[-1]["step"] if s is None else s for s in (MEM_STEP, HALF_STEP, GROK_STEP))
PHASES = [("memorisation", 0, MEM_STEP, "tab:orange"), ("circuit formation", MEM_STEP, HALF_STEP, "tab:purple"),
          ("cleanup", HALF_STEP, GROK_STEP, "tab:green")]


def shade_phases(ax, label=True):
    for name, start, stop, colour in PHASES:
        if start is not None and stop is not None:
            ax.axvspan(start, stop, color=colour, alpha=0.12, label=name if label else None)


fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
for split in ("train", "test"):
    axes[0].plot(steps, column(history, f"{split}_loss"), label=f"{split} loss")
    axes[1].plot(steps, column(history, f"{split}_acc"), label=f"{split} accuracy")
axes[0].set(yscale="log", xlabel="step", title="cross-entropy (log scale)")
axes[1].set(xlabel="step", title="accuracy")
axes[2].plot(steps, column(history, "sum_sq_weights"), color="black")
axes[2].set(xlabel="step", title="sum of squared weights")
for i, ax in enumerate(axes):
    shade_phases(ax, label=i == 0)
    if i < 2:
        ax.legend(fontsize=8)
plt.tight_layout()
plt.show()
test_acc_at_mem = history[[row["step"] for row in history].index(MEM_STEP)]["test_acc"]
print(f"memorised at step {MEM_STEP} (test acc then {test_acc_at_mem:.3f}); test acc 50% at step {HALF_STEP}; "
      f"grokked (test acc >= 95%) at step {GROK_STEP}: {GROK_STEP / MEM_STEP:.0f}x later")

# %% [markdown]
# The training loss collapses within the first hundred steps or so; the test loss first goes
# *up*, far above the loss of a uniform guess (`log p`), because the memorised answers are
# confidently wrong on new pairs. Much later it comes down. Meanwhile the sum of squared
# weights falls: weight decay keeps pulling on the weights (with AdamW's decay that is by
# construction, so we print it rather than claim it), and a memorising solution needs large
# weights while a general one can be small. That trade (Varma et al. call it *circuit
# efficiency*) is what eventually favours the general algorithm.
#
# One training run per seed: the claims below have no interval over pairs (the test pairs are
# the whole rest of the table, not a sample); `make seeds` repeats the run on other seeds.

# %%
FINAL_TEST_ACC = history[-1]["test_acc"]
sq_weights = column(history, "sum_sq_weights")
print(f"sum of squared weights: {max(sq_weights):.0f} at most, {sq_weights[-1]:.0f} at the end")
claim("memorised_before_grokking", test_acc_at_mem, "<", 0.5,
      why="when the training set is memorised, the test accuracy should still be low")
claim("grokking_delayed", GROK_STEP / MEM_STEP if GROK_STEP and MEM_STEP else float("nan"), ">=", 4,
      why="the model should pass 95% test accuracy at least 4x later than it memorised the training set")
claim("final_test_acc", FINAL_TEST_ACC, ">=", 0.95, why=f"the model should generalise within {STEPS} steps")

# %% [markdown]
# ## 3. The algorithm: a Fourier basis over Z_p
#
# Functions on the integers mod p have a natural basis of waves: the constant, and for each
# frequency `k = 1 .. (p-1)/2` the pair `cos(2πkx/p)`, `sin(2πkx/p)`. Nanda et al. found that
# the trained network represents `a` and `b` through a few such waves, combines them with
# the identities `cos(w(a+b)) = cos(wa)cos(wb) − sin(wa)sin(wb)` (and the same for sine), and
# reads out `cos(w(a + b − c))` for every candidate answer `c`, which is largest exactly when
# `c = a + b mod p`. Addition becomes rotation around a circle.
#
# ### Exercise 1 — a Fourier basis
# Difficulty 🔴⚪⚪ · Importance 🔵🔵🔵 · ~10 min
#
# Build the `[p, p]` matrix whose rows are: the constant, then `cos` and `sin` of frequency 1,
# of frequency 2, ... Each row must have unit length, so that the basis is **orthonormal**
# (`B @ B.T = I`) and projecting onto it preserves norms. `p` is odd here.

# %%
def fourier_basis(p: int) -> torch.Tensor:
    """Orthonormal Fourier basis of functions on {0, ..., p-1}, p odd. Returns [p, p] float32.

    Row 0: the constant 1/sqrt(p). Row 2k-1: cos(2*pi*k*x/p), row 2k: sin(2*pi*k*x/p), each
    scaled to unit length, for k = 1 .. (p-1)//2. Column x is the input x.
    """
    raise NotImplementedError(
        "Exercise: write this part. Hint: build float64 rows with torch.cos/torch.sin of 2*pi*k*x/p, stack them, "
        "divide each by its norm"
    )


check_fourier_basis(fourier_basis)

# %% [markdown]
# <details><summary>Hint</summary>
#
# The norm of `cos(2πkx/p)` over `x = 0..p-1` is `sqrt(p/2)`, and of the constant 1 it is
# `sqrt(p)`; dividing each row by its own `.norm()` handles both.
# </details>

# %%
BASIS = fourier_basis(P)
N_FREQ = (P - 1) // 2
fig, ax = plt.subplots(figsize=(8, 2.8))
for row, name in [(0, "constant"), (1, "cos k=1"), (2, "sin k=1"), (7, "cos k=4")]:
    ax.plot(BASIS[row], marker=".", label=name)
ax.set(xlabel="x", title="a few rows of the Fourier basis")
ax.legend(fontsize=8, ncol=4)
plt.show()

# %% [markdown]
# ### Exercise 2 — how much of a matrix lives at each frequency
# Difficulty 🔴⚪⚪ · Importance 🔵🔵🔵 · ~10 min
#
# The embedding `W_E[:p]` has one row per number `x`. Viewed column by column it is `d_model`
# functions of `x`; rewriting them in the Fourier basis (`BASIS @ W_E[:p]`) tells us which
# waves the embedding uses. Return, for each frequency `k = 1 .. (p-1)/2`, the norm of the
# cos row and the sin row of that frequency together (over all columns). Index `i` of the
# result is frequency `i + 1`.

# %%
def freq_norms(W: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """W: [p, d] (row x belongs to input x); basis: [p, p] from fourier_basis.
    Returns [(p-1)//2]: entry k-1 = sqrt(|(basis @ W)[2k-1]|^2 + |(basis @ W)[2k]|^2)."""
    raise NotImplementedError(
        "Exercise: write this part. Hint: coefficients = basis @ W; drop row 0, square, sum over columns, pair up "
        "rows (2k-1, 2k), sqrt"
    )


check_freq_norms(freq_norms)

# %% [markdown]
# Apply it to the embedding at every checkpoint. At initialisation the weights are random,
# so every frequency holds a similar share. After training, almost all of the embedding's
# norm sits on a few frequencies.

# %%
CKPT_STEPS = sorted(run.checkpoints)
embed_norms = torch.stack([freq_norms(run.checkpoints[s]["W_E"][:P], BASIS) for s in CKPT_STEPS])  # [ckpt, freq]
fig, ax = plt.subplots(figsize=(11, 3.5))
every = max(1, len(CKPT_STEPS) // 12)                            # about a dozen labelled ticks
heatmap(embed_norms.T, ax=ax, title="embedding norm per frequency over training", xlabel="checkpoint step",
        ylabel="frequency k", xticks=[s if i % every == 0 else "" for i, s in enumerate(CKPT_STEPS)],
        yticks=list(range(1, N_FREQ + 1)))
plt.show()


def show_spectrum(step):
    norms = embed_norms[CKPT_STEPS.index(step)]
    fig, ax = plt.subplots(figsize=(8, 2.5))
    ax.bar(range(1, N_FREQ + 1), norms)
    ax.set(xlabel="frequency k", ylabel="norm", title=f"embedding spectrum at step {step}")
    plt.show()


slider_or_static(show_spectrum, CKPT_STEPS, description="step", static=[CKPT_STEPS[0], CKPT_STEPS[-1]])

# %% [markdown]
# ### Exercise 3 — which frequency does each neuron use?
# Difficulty 🔴🔴⚪ · Importance 🔵🔵🔵 · ~15 min
#
# Every MLP neuron's activation at the last position is a function of the pair `(a, b)`: a
# `p × p` map. Its 2D Fourier transform is `BASIS @ map @ BASIS.T`, a `p × p` array of
# coefficients whose entry `(i, j)` pairs basis row `i` in `a` with row `j` in `b`.
#
# A neuron that works at frequency `k` only uses the coefficients whose two indices are each
# the constant (0) or a wave of frequency `k` (`2k-1` or `2k`): terms in `a` alone, in `b`
# alone, and products such as `cos(wa)cos(wb)`. Return, for each neuron and each frequency,
# the fraction of the neuron's **variance** those coefficients hold: their squared sum over
# the squared sum of all coefficients except the constant `(0, 0)` one (a neuron's mean is
# not variance).

# %%
def neuron_freq_fractions(acts: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """acts: [p, p, n_neurons], acts[a, b, i] = neuron i on input (a, b). basis: [p, p].
    Returns [n_neurons, (p-1)//2]: fraction of each neuron's variance explained by frequency k
    (column k-1), counting the 2D coefficients (i, j) with i, j in {0, 2k-1, 2k}, not (0, 0)."""
    raise NotImplementedError(
        "Exercise: write this part. Hint: coef = einsum('ia,jb,abn->ijn', basis, basis, acts); zero coef[0, 0]; sum "
        "squares over index sets"
    )


check_neuron_freq_fractions(neuron_freq_fractions)

# %% [markdown]
# <details><summary>Hint</summary>
#
# `power[idx][:, idx]` picks the 3 × 3 block of rows and columns `idx = [0, 2k-1, 2k]`. Dead
# neurons (always 0) have no variance at all: guard the division.
# </details>

# %%
cache = {}
with torch.no_grad():
    logits_all = model(data.tokens, cache=cache)                 # every (a, b) pair, row a * p + b
acts = cache["mlp_post"].reshape(P, P, -1)                         # [a, b, neuron]
fractions = neuron_freq_fractions(acts, BASIS)                     # [neuron, freq]
best_frac, best_freq = fractions.max(dim=1)
best_freq = best_freq + 1                                          # column k-1 holds frequency k
alive = acts.reshape(P * P, -1).var(0) > 1e-4 * acts.reshape(P * P, -1).var(0).max()
counts = torch.bincount(best_freq[alive], minlength=N_FREQ + 1)[1:]

# Key frequencies: those that a sizeable group of neurons is tuned to.
KEY_FREQS = sorted((torch.nonzero(counts >= 0.05 * alive.sum()).flatten() + 1).tolist())
print(f"{alive.sum().item()} live neurons; key frequencies {KEY_FREQS} "
      f"(neurons per key frequency: {[counts[k - 1].item() for k in KEY_FREQS]})")
MEDIAN_FRAC = best_frac[alive].median().item()
print(f"median fraction of a live neuron's variance explained by its best frequency: {MEDIAN_FRAC:.2f}")

fig, axes = plt.subplots(1, 2, figsize=(12, 3.2))
axes[0].bar(range(1, N_FREQ + 1), counts)
axes[0].set(xlabel="best frequency", ylabel="neurons", title="neurons clustered by frequency")
axes[1].hist(best_frac[alive], bins=30)
axes[1].set(xlabel="fraction of variance explained by the best frequency", ylabel="neurons")
plt.show()

# %% [markdown]
# Look at a few neurons, one per key frequency: their `p × p` activation maps repeat with
# the same period along `a` and along `b`, and their 2D Fourier transforms are empty except
# in the rows and columns of one frequency (and of the constant).

# %%
examples = [int(torch.nonzero((best_freq == k) & alive)[0]) for k in KEY_FREQS[:4]]
fig, axes = plt.subplots(2, len(examples), figsize=(3.6 * len(examples), 6.4), squeeze=False)
for col, neuron in enumerate(examples):
    heatmap(acts[:, :, neuron], ax=axes[0, col], title=f"neuron {neuron} (k={best_freq[neuron].item()})",
            xlabel="b", ylabel="a", colorbar=False)
    coef = BASIS @ acts[:, :, neuron] @ BASIS.T
    heatmap(coef.abs()[: 2 * max(KEY_FREQS) + 3, : 2 * max(KEY_FREQS) + 3], ax=axes[1, col],
            title="|2D Fourier coefficients|", xlabel="basis row for b", ylabel="basis row for a", colorbar=False)
plt.tight_layout()
plt.show()

# %% [markdown]
# Back to the embedding: the key frequencies that the neurons chose are the ones that carry
# its norm. We compare the share of the embedding's squared norm (constant left out) that
# sits on the key frequencies at initialisation and at the end.

# %%
def share_on(norms: torch.Tensor, freqs) -> float:
    """Share of the squared norm (over all frequencies) that sits on ``freqs``."""
    sq = norms.double() ** 2
    return (sq[[k - 1 for k in freqs]].sum() / sq.sum()).item()


SHARE_INIT, SHARE_END = share_on(embed_norms[0], KEY_FREQS), share_on(embed_norms[-1], KEY_FREQS)
uniform = len(KEY_FREQS) / N_FREQ
print(f"{len(KEY_FREQS)} of {N_FREQ} frequencies: share of the embedding norm {SHARE_INIT:.2f} at initialisation, "
      f"{SHARE_END:.2f} at the end (an even spread would give {uniform:.2f})")

# %%
claim("several_key_freqs", len(KEY_FREQS), ">=", 2, why="the neurons should cluster on more than one frequency")
claim("few_key_freqs", len(KEY_FREQS), "<=", 8, why=f"...but only a handful of the {N_FREQ}")
claim("key_freqs_carry_embedding", SHARE_END, ">=", 0.7,
      why="the key frequencies should carry most of the embedding norm at the end")
claim("neurons_single_frequency", MEDIAN_FRAC, ">=", 0.7,
      ci=stats.bootstrap_ci(best_frac[alive], np.median),
      why="a typical live neuron should be explained by one frequency")

# %% [markdown]
# ## 4. Progress measures
#
# If the final model computes with the key frequencies, we can ask at every checkpoint how
# far along that computation is, even while the test accuracy is still flat. Arrange the
# logits over all `p²` inputs as a `[p, p, p]` array: `logits[a, b, c]`. The algorithm's
# logits `cos(w(a + b − c))` are, for each answer `c`, a mix of two functions of the input:
# `cos(w(a+b))` and `sin(w(a+b))`. So:
#
# - the **restricted loss** keeps only the components of the logits along those directions
#   for the key frequencies and asks: does that part *alone* already solve the task on
#   **test** pairs?
# - the **excluded loss** removes exactly those components and asks: can the model still
#   fit its **training** pairs without them, i.e. from memorisation alone?
#
# ### Exercise 4 — the key-frequency component of the logits
# Difficulty 🔴🔴🔴 · Importance 🔵🔵🔵 · ~20 min
#
# For each frequency `k` in `freqs` build the two unit-length `p × p` directions
# `cos(w_k(a+b))` and `sin(w_k(a+b))` from the basis rows (use the identities above), and
# project every output column `logits[:, :, c]` onto them. Return the sum of the projections.

# %%
def key_freq_component(logits: torch.Tensor, freqs, basis: torch.Tensor) -> torch.Tensor:
    """logits: [p, p, n_out], logits[a, b, c]. freqs: frequencies 1..(p-1)//2. basis: [p, p].
    Returns [p, p, n_out]: the part of the logits in span{cos(w_k(a+b)), sin(w_k(a+b)) : k in freqs}."""
    raise NotImplementedError(
        "Exercise: write this part. Hint: cos(w(a+b)) ~ outer(cos, cos) - outer(sin, sin), divide by sqrt(2); project"
        " with einsum 'ab,abc->c'"
    )


check_key_freq_component(key_freq_component)

# %% [markdown]
# <details><summary>Hint</summary>
#
# With unit-length rows `c = BASIS[2k-1]` and `s = BASIS[2k]`, `outer(c, c)` and `outer(s, s)`
# are orthonormal, so `outer(c, c) − outer(s, s)` has length `sqrt(2)`. The projection of a
# column `L` onto a unit direction `u` is `u * (u · L)`.
# </details>
#
# ### Exercise 5 — restricted and excluded loss
# Difficulty 🔴🔴⚪ · Importance 🔵🔵🔵 · ~10 min
#
# Return the restricted loss (key components only) on the **test** pairs and the excluded
# loss (logits minus the key components) on the **training** pairs, as two floats. Use
# float64 for the cross-entropy.

# %%
def progress_measures(logits: torch.Tensor, labels: torch.Tensor, key_freqs, basis: torch.Tensor,
                      train_mask: torch.Tensor) -> tuple[float, float]:
    """logits: [p, p, p] over all pairs; labels: [p*p] answers (row a*p + b); train_mask: [p*p] bool.
    Returns (restricted loss on test rows, excluded loss on train rows)."""
    raise NotImplementedError(
        "Exercise: write this part. Hint: kept = key_freq_component(...).reshape(p*p, p); removed = logits - kept; "
        "pick rows with the mask"
    )


check_progress_measures(progress_measures)


# %%
DATA_ON_DEVICE = data.to(SETUP.device)


def grid_logits(m) -> torch.Tensor:
    """Logits of every pair as ``[a, b, c]``, computed on the course's device; the result and ``m`` end on the CPU,
    where the rest of the analysis (small tensors) runs."""
    with torch.no_grad():
        logits = m.to(SETUP.device)(DATA_ON_DEVICE.tokens).reshape(P, P, P).cpu()
    m.cpu()
    return logits


def gini(values) -> float:
    """Gini coefficient of non-negative values: 0 when all are equal, towards 1 when one holds everything."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    ranks = np.arange(1, len(x) + 1)
    return float(((2 * ranks - len(x) - 1) * x).sum() / (len(x) * x.sum()))


train_mask = data.train_mask
LOG_P = math.log(P)
timeline = {name: [] for name in ("restricted", "excluded", "test_loss", "test_acc", "gini")}
for s in CKPT_STEPS:
    grid = grid_logits(run.model_at(s))
    restricted, excluded = progress_measures(grid, data.labels, KEY_FREQS, BASIS, train_mask)
    flat = grid.reshape(P * P, P)[data.test_idx]
    timeline["restricted"].append(restricted)
    timeline["excluded"].append(excluded)
    timeline["test_loss"].append(loss_f64(flat, data.labels[data.test_idx]).item())
    timeline["test_acc"].append((flat.argmax(-1) == data.labels[data.test_idx]).double().mean().item())
    timeline["gini"].append(gini(embed_norms[CKPT_STEPS.index(s)]))
timeline = {name: np.array(values) for name, values in timeline.items()}

fig, axes = plt.subplots(1, 2, figsize=(15, 4))
ax = axes[0]
ax.plot(CKPT_STEPS, timeline["test_loss"], label="test loss", color="tab:orange")
ax.plot(steps, column(history, "train_loss"), label="train loss", color="tab:blue")
ax.plot(CKPT_STEPS, timeline["restricted"], "--", label="restricted loss (test)", color="tab:red")
ax.plot(CKPT_STEPS, timeline["excluded"], "--", label="excluded loss (train)", color="tab:purple")
ax.axhline(LOG_P, color="grey", lw=0.8, label="log p (uniform guess)")
shade_phases(ax)
ax.set(yscale="log", xlabel="step", ylabel="cross-entropy", title="progress measures")
ax.legend(fontsize=8, ncol=2)
axes[1].plot(CKPT_STEPS, timeline["test_acc"], label="test accuracy", color="tab:orange")
axes[1].plot(CKPT_STEPS, timeline["gini"], label="Gini of the embedding's frequency norms", color="tab:green")
shade_phases(axes[1], label=False)
axes[1].set(xlabel="step", ylim=(0, 1.02), title="generalisation and Fourier sparsity")
axes[1].legend(fontsize=8)
plt.show()

# %% [markdown]
# Read the dashed lines against the solid ones. Once the training set is memorised, the
# training loss is near zero and flat, yet the **excluded loss climbs**: the model is moving
# its training-set performance from memorised lookup onto the key-frequency circuit, so
# removing that circuit hurts more and more. The **restricted loss** falls far below a uniform
# guess long before the test loss does: the general algorithm is already in the logits while
# the memorised part still drowns it out on the test pairs. The Gini coefficient of the
# embedding's frequency norms (0: spread evenly, 1: all on one frequency) rises all along.
#
# **Do they move before the test accuracy does?** That is the claim that makes them *progress
# measures*, and it has to be measured against the outcome, not against phases defined from it.
# At this scale the test accuracy starts to climb as soon as the training set is memorised
# (printed below), so there is no long stretch at chance to test against; we ask instead what
# the measures have done *before the test accuracy reaches 50%*. Two readings:
# - the excluded loss's rise from its lowest point after memorisation to the last checkpoint
#   before 50% test accuracy, against the same rise when `len(KEY_FREQS)` **random** other
#   frequencies are removed instead (`N_RANDOM_SETS` draws; a rise any frequency set would show
#   is not evidence for the key ones);
# - how many steps before the test loss the restricted loss gets below `log(p) / 2`, half the
#   loss of a uniform guess (logits near zero sit at `log p`, so a removal that leaves nothing
#   cannot count as progress).
#
# The key frequencies were found in the *final* model (as Nanda et al. do): the measures use
# what training ends with to look back at what it was doing.

# %%
MEM_CKPT = next(s for s in CKPT_STEPS if s >= MEM_STEP)
HALF_CKPT = next((s for s, acc in zip(CKPT_STEPS, timeline["test_acc"]) if acc >= 0.5), CKPT_STEPS[-1])
window = [i for i, s in enumerate(CKPT_STEPS) if MEM_CKPT <= s < HALF_CKPT]   # memorised, test accuracy below 50%
window = window or [CKPT_STEPS.index(MEM_CKPT)]   # empty only when the phases did not happen (a smoke run)
i_low = min(window, key=lambda i: timeline["excluded"][i])                    # the excluded loss's lowest point
i_last = window[-1]
EXCLUDED_RISE = timeline["excluded"][i_last] - timeline["excluded"][i_low]
others = [k for k in range(1, N_FREQ + 1) if k not in KEY_FREQS]
generator = torch.Generator().manual_seed(SETUP.seed)


def random_freqs() -> list[int]:
    """As many frequencies as KEY_FREQS, drawn from the others."""
    return [others[i] for i in torch.randperm(len(others), generator=generator)[: len(KEY_FREQS)]]


grid_low, grid_last = grid_logits(run.model_at(CKPT_STEPS[i_low])), grid_logits(run.model_at(CKPT_STEPS[i_last]))
random_rises = []
for _ in range(N_RANDOM_SETS):
    chosen = random_freqs()
    random_rises.append(progress_measures(grid_last, data.labels, chosen, BASIS, train_mask)[1]
                        - progress_measures(grid_low, data.labels, chosen, BASIS, train_mask)[1])
RANDOM_RISE_P95 = float(np.percentile(random_rises, 95))
# A level well clear of a uniform guess: half its loss, i.e. the right answer gets more than 1/sqrt(p) on average
# (geometric mean). Logits near zero, which any removal leaves, sit at log p and never count as progress.
LEVEL = LOG_P / 2
restricted_below = next((s for s, v in zip(CKPT_STEPS, timeline["restricted"]) if v < LEVEL), None)
test_below = next((s for s, v in zip(CKPT_STEPS, timeline["test_loss"]) if s >= MEM_CKPT and v < LEVEL), None)
RESTRICTED_LEAD = test_below - restricted_below if None not in (test_below, restricted_below) else float("nan")
# The lead of the excluded loss: the first checkpoint where it is a nat above its lowest point, before 50% accuracy.
moved = next((CKPT_STEPS[i] for i in range(i_low, len(CKPT_STEPS)) if
              timeline["excluded"][i] >= timeline["excluded"][i_low] + 1.0), None)
EXCLUDED_LEAD = HALF_CKPT - moved if moved is not None else float("nan")
GINI_MEM, GINI_HALF, GINI_END = (timeline["gini"][CKPT_STEPS.index(s)] for s in (MEM_CKPT, CKPT_STEPS[i_last],
                                                                                   CKPT_STEPS[-1]))
print(f"memorised at step {MEM_CKPT} with test accuracy {timeline['test_acc'][CKPT_STEPS.index(MEM_CKPT)]:.3f} "
      f"(chance {1 / P:.3f}); test accuracy reaches 50% at step {HALF_CKPT}")
print(f"excluded loss: lowest {timeline['excluded'][i_low]:.2f} at step {CKPT_STEPS[i_low]}, "
      f"{timeline['excluded'][i_last]:.2f} at step {CKPT_STEPS[i_last]} (test accuracy "
      f"{timeline['test_acc'][i_last]:.3f}): +{EXCLUDED_RISE:.2f} nats; removing random frequencies instead: "
      f"95th percentile {RANDOM_RISE_P95:+.3f}; a nat above its lowest point {EXCLUDED_LEAD} steps before 50%")
print(f"restricted loss below log(p) / 2 = {LEVEL:.2f} at step {restricted_below}, test loss at step {test_below}: "
      f"{RESTRICTED_LEAD} steps ahead")
print(f"Gini of the embedding's frequency norms: {timeline['gini'][0]:.2f} at initialisation, {GINI_MEM:.2f} at "
      f"memorisation, {GINI_HALF:.2f} just before 50% test accuracy, {GINI_END:.2f} at the end")

# %%
claim("excluded_loss_rises_before_half_acc", EXCLUDED_RISE, ">", 1.0,
      why="before the test accuracy reaches 50%, removing the key frequencies should already cost the training "
          "pairs a nat more than it did just after memorisation")
claim("excluded_rise_beats_random_freqs", EXCLUDED_RISE, ">", RANDOM_RISE_P95,
      why=f"...a rise that removing random frequency sets (95th percentile of {N_RANDOM_SETS}) does not show")
claim("restricted_loss_leads_test_loss", RESTRICTED_LEAD, ">=", 2 * CHECKPOINT_EVERY,
      why="the key-frequency part of the logits should reach half a uniform guess's loss on the test pairs at "
          "least two checkpoints before the full logits do")

# %% [markdown]
# ## 5. Causal checks: remove the key frequencies, outside and inside the network
#
# The progress measures are correlations over training. Now we intervene on the final model.
# The first test is on the logits: remove their key-frequency components and score the test
# pairs. It is the weakest test, because once the logits *are* the algorithm, removing its
# frequencies from them can hardly fail. So we then go inside: the **embedding** (where `a`
# and `b` first become waves), the **neurons** (which multiply them), and the map from neurons
# to logits. Each intervention has a control of the same size: as many random frequencies, as
# many random neurons, `N_RANDOM_SETS` times.

# %%
def test_scores(logits_grid: torch.Tensor) -> tuple[float, float]:
    """(test loss, test accuracy) of logits over every pair, ``[p, p, p]`` or ``[p * p, p]``."""
    flat = logits_grid.reshape(P * P, P)[data.test_idx]
    labels = data.labels[data.test_idx]
    return loss_f64(flat, labels).item(), (flat.argmax(-1) == labels).double().mean().item()


final_logits = logits_all.reshape(P, P, P)                           # the final model's logits, from part 3
BASE_LOSS, BASE_ACC = test_scores(final_logits)
KEY_LOSS, KEY_ACC = test_scores(final_logits - key_freq_component(final_logits, KEY_FREQS, BASIS))
random_scores = [test_scores(final_logits - key_freq_component(final_logits, random_freqs(), BASIS))
                 for _ in range(N_RANDOM_SETS)]
RANDOM_LOSS_P95 = float(np.percentile([s[0] for s in random_scores], 95))
RANDOM_ACC_MIN = float(min(s[1] for s in random_scores))
print(f"logits: test loss {BASE_LOSS:.3f} -> {KEY_LOSS:.2f} without the key frequencies; random sets: 95th "
      f"percentile {RANDOM_LOSS_P95:.3f}, accuracy never below {RANDOM_ACC_MIN:.3f}")

# %%
claim("key_ablation_destroys_acc", KEY_ACC, "<", 0.2, why="removing the key frequencies should destroy test accuracy")
claim("key_ablation_beats_random_p95", KEY_LOSS, ">", RANDOM_LOSS_P95,
      why=f"...and raise the test loss more than 95% of {N_RANDOM_SETS} same-size random frequency sets")
claim("random_ablation_harmless", BASE_ACC - RANDOM_ACC_MIN, "<", 0.05,
      why="removing random frequencies should barely matter, even for the most harmful random set")

# %% [markdown]
# ### Exercise 6 — remove frequencies from the embedding
# Difficulty 🔴🔴⚪ · Importance 🔵🔵🔵 · ~10 min
#
# `W_E[:p]` is `d_model` functions of the input `x` (one per column). Return a copy with the
# cos and sin components of every frequency in `freqs` removed from each column, and
# everything else (other frequencies, the constant) left as it is. The basis is orthonormal,
# so going to Fourier coefficients and back is one matrix product each way.

# %%
def remove_frequencies(W: torch.Tensor, freqs, basis: torch.Tensor) -> torch.Tensor:
    """W: [p, d] (row x belongs to input x); freqs: frequencies 1..(p-1)//2; basis: [p, p].
    Returns a new [p, d] tensor: W without its components along basis rows 2k-1 and 2k, k in freqs."""
    raise NotImplementedError(
        "Exercise: write this part. Hint: coefficients = basis @ W; zero rows 2k-1 and 2k; return basis.T @ "
        "coefficients"
    )


check_remove_frequencies(remove_frequencies)


# %% [markdown]
# The model has no other path from `a` and `b` to the answer than through their embeddings,
# so an embedding without the key frequencies tests whether the rest of the network reads
# the numbers through those waves. Only the number rows `W_E[:p]` change (not `=`).

# %%
def without_embedding_freqs(m, freqs):
    ablated = copy.deepcopy(m)
    with torch.no_grad():
        ablated.W_E[:P] = remove_frequencies(m.W_E[:P].detach(), freqs, BASIS)
    return ablated


EMB_KEY_LOSS, EMB_KEY_ACC = test_scores(grid_logits(without_embedding_freqs(model, KEY_FREQS)))
emb_random = [test_scores(grid_logits(without_embedding_freqs(model, random_freqs()))) for _ in range(N_RANDOM_SETS)]
EMB_RANDOM_LOSS_P95 = float(np.percentile([s[0] for s in emb_random], 95))
EMB_RANDOM_ACC_MIN = float(min(s[1] for s in emb_random))
print(f"embedding without the key frequencies: test loss {EMB_KEY_LOSS:.2f}, accuracy {EMB_KEY_ACC:.3f} "
      f"(chance {1 / P:.3f}); without random ones: loss 95th percentile {EMB_RANDOM_LOSS_P95:.4f}, "
      f"accuracy never below {EMB_RANDOM_ACC_MIN:.3f}")

# %%
claim("embedding_key_ablation_destroys_acc", EMB_KEY_ACC, "<", 0.2,
      why="without its key frequencies in the embedding, the network should lose the task")
claim("embedding_key_ablation_beats_random_p95", EMB_KEY_LOSS, ">", EMB_RANDOM_LOSS_P95,
      why=f"...more than without 95% of {N_RANDOM_SETS} same-size random frequency sets")

# %% [markdown]
# **Neuron clusters.** Part 3 grouped the live neurons by the frequency that explains their
# activations. If the story is right, the neurons tuned to `k` are the ones that write
# frequency `k` into the logits. We **mean-ablate** each cluster (every neuron set to its
# average over all pairs, so it still adds its constant) and measure how much of the logits'
# frequency-`k` component (`key_freq_component(..., [k])`, its norm) is gone, and how much of the
# other key frequencies'. Control: as many neurons drawn at random from all live neurons. The
# MLP is the last layer before the unembedding, so its effect on the logits is two matrix
# products, computed from the cache of part 3.

# %%
def logits_without_neurons(m, cache: dict, neurons) -> torch.Tensor:
    """[p * p, p]: the logits of every pair with ``neurons`` mean-ablated, from the cached last position."""
    post = cache["mlp_post"].clone()                                  # [pair, neuron]
    post[:, neurons] = post[:, neurons].mean(0)
    return (cache["resid_mid"] + post @ m.W_out + m.b_out) @ m.W_U


def freq_size(logits: torch.Tensor, k: int) -> float:
    return key_freq_component(logits.reshape(P, P, P), [k], BASIS).norm().item()


with torch.no_grad():
    assert torch.allclose(logits_without_neurons(model, cache, []), logits_all, atol=1e-4), \
        "with no neuron ablated, the logits from the cache must be the model's"
    live = torch.nonzero(alive).flatten()
    clean_size = {k: freq_size(logits_all, k) for k in KEY_FREQS}
    own_removed, other_removed, random_p95 = {}, {}, {}
    for k in KEY_FREQS:
        cluster = live[best_freq[live] == k]
        ablated = logits_without_neurons(model, cache, cluster)
        own_removed[k] = 1 - freq_size(ablated, k) / clean_size[k]
        other_removed[k] = max(1 - freq_size(ablated, j) / clean_size[j] for j in KEY_FREQS if j != k)
        draws = [1 - freq_size(logits_without_neurons(model, cache, live[torch.randperm(len(live),
                 generator=generator)[: len(cluster)]]), k) / clean_size[k] for _ in range(N_RANDOM_SETS)]
        random_p95[k] = float(np.percentile(draws, 95))
        print(f"k = {k:2d}: {len(cluster):3d} neurons remove {own_removed[k]:.0%} of frequency {k} in the logits "
              f"(random sets of as many: 95th percentile {random_p95[k]:.0%}), at most {other_removed[k]:.1%} "
              f"of another key frequency")
CLUSTER_OWN_MIN = min(own_removed.values())
CLUSTER_LEAD_MIN = min(own_removed[k] - random_p95[k] for k in KEY_FREQS)
CLUSTER_OTHER_MAX = max(other_removed.values())

# %%
claim("clusters_write_their_frequency", CLUSTER_OWN_MIN, ">=", 0.8,
      why="for every key frequency, its own neuron cluster should write at least 80% of it into the logits")
claim("cluster_ablation_beats_random_p95", CLUSTER_LEAD_MIN, ">", 0.0,
      why=f"...more than 95% of {N_RANDOM_SETS} random neuron sets of the same size remove, for every cluster")
claim("cluster_ablation_spares_other_frequencies", CLUSTER_OTHER_MAX, "<", 0.1,
      why="ablating one cluster should leave the other key frequencies in the logits almost whole")

# %% [markdown]
# **The neuron-logit map.** The same question from the weights alone: `W_out @ W_U` (`[neuron,
# answer]`) says what each neuron writes onto each answer `c`. Read as a function of `c`, its
# Fourier spectrum should sit on the frequency that the neuron's *activations* were tuned to
# (part 3): two readouts, one from inputs and one from weights, that have no reason to agree
# unless the neuron really works at that frequency. Control: the same share with the neurons'
# frequencies shuffled among them.

# %%
with torch.no_grad():
    neuron_logit = (model.W_out @ model.W_U)                              # [neuron, answer c]
    # Fourier coefficients over the answers, squared, cos and sin of each frequency summed: [freq, neuron]
    power = ((BASIS @ neuron_logit.T)[1:] ** 2).reshape(N_FREQ, 2, -1).sum(1)
    share = power / power.sum(0, keepdim=True)
own_share = share[best_freq[live] - 1, live]
OWN_SHARE_MEDIAN = own_share.median().item()
shuffled_medians = [share[best_freq[live][torch.randperm(len(live), generator=generator)] - 1, live].median().item()
                    for _ in range(N_RANDOM_SETS)]
SHUFFLED_SHARE_P95 = float(np.percentile(shuffled_medians, 95))
print(f"median share of a live neuron's logit map on its activation frequency: {OWN_SHARE_MEDIAN:.2f} "
      f"(frequencies shuffled among neurons: 95th percentile {SHUFFLED_SHARE_P95:.3f})")

# %%
claim("neuron_logit_map_on_own_frequency", OWN_SHARE_MEDIAN, ">=", 0.7,
      ci=stats.bootstrap_ci(own_share, np.median),
      why="a typical neuron should write onto the answers at the frequency its activations are tuned to")
claim("neuron_logit_map_beats_shuffled", OWN_SHARE_MEDIAN, ">", SHUFFLED_SHARE_P95,
      why=f"...far more than with the frequencies shuffled among neurons ({N_RANDOM_SETS} shuffles, 95th percentile)")

# %% [markdown]
# ## 6. Controls
#
# Three runs at the same scale and for the same number of steps, each changing one thing:
# 1. **no weight decay**: is the pressure towards small weights what makes it grok?
# 2. **shuffled labels**: the training labels are permuted, so there is no rule to find.
#    The test accuracy must stay at chance and no Fourier structure should appear, or our
#    Fourier story would be an artefact of the architecture. It is also the *memorising
#    solution* we compare the grokked one with: same optimiser, same weight decay, same steps,
#    and (if it fits its labels) the same training accuracy;
# 3. **corrupted labels** (Doshi et al.): `CORRUPT_FRAC` (2%) of the training answers are
#    wrong. Can the network learn the rule *and* memorise the exceptions?

# %%
no_wd = train_grokking(data, STEPS, seed=SETUP.seed, lr=LR, weight_decay=0.0, log_every=LOG_EVERY,
                       checkpoint_every=STEPS, desc="no weight decay")
shuffled_data = make_data(P, FRAC_TRAIN, seed=SETUP.seed, shuffle_labels=True)
require_labels_shuffled(shuffled_data.labels[shuffled_data.train_idx], data.labels[data.train_idx])
shuffled = train_grokking(shuffled_data, STEPS, seed=SETUP.seed, lr=LR, weight_decay=WEIGHT_DECAY,
                          log_every=LOG_EVERY, checkpoint_every=STEPS, desc="shuffled labels")
corrupt_data = make_data(P, FRAC_TRAIN, seed=SETUP.seed, corrupt_frac=CORRUPT_FRAC)
corrupted = train_grokking(corrupt_data, STEPS, seed=SETUP.seed, lr=LR, weight_decay=WEIGHT_DECAY,
                           log_every=LOG_EVERY, checkpoint_every=CHECKPOINT_EVERY, desc="corrupted labels")

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 3.5))
for ax, (name, r) in zip(axes, [("weight decay", run), ("no weight decay", no_wd), ("shuffled labels", shuffled)]):
    ax.plot(column(r.history, "step"), column(r.history, "train_acc"), label="train")
    ax.plot(column(r.history, "step"), column(r.history, "test_acc"), label="test")
    ax.axhline(1 / P, color="grey", lw=0.8)
    ax.set(title=name, xlabel="step", ylabel="accuracy", ylim=(-0.02, 1.02))
    ax.legend(fontsize=8)
plt.tight_layout()
plt.show()

NO_WD_TEST_ACC = no_wd.history[-1]["test_acc"]
SHUFFLED_MAX_TEST_ACC = max(column(shuffled.history, "test_acc"))
SHUFFLED_TRAIN_ACC = shuffled.history[-1]["train_acc"]


def top_share(m, k: int) -> float:
    """Share of the embedding norm on its own k strongest frequencies."""
    norms = freq_norms(m.W_E.detach()[:P], BASIS)
    return share_on(norms, (norms.argsort(descending=True)[:k] + 1).tolist())


K = len(KEY_FREQS)
sparsity = {"initialisation": top_share(run.model_at(0), K), "weight decay": top_share(model, K),
            "no weight decay": top_share(no_wd.model, K), "shuffled labels": top_share(shuffled.model, K)}
for name, value in sparsity.items():
    print(f"share of the embedding norm on its top {K} frequencies, {name:<16} {value:.2f}")
print(f"test accuracy at step {STEPS}: weight decay {FINAL_TEST_ACC:.3f}, no weight decay {NO_WD_TEST_ACC:.3f}; "
      f"shuffled labels never above {SHUFFLED_MAX_TEST_ACC:.3f} (chance {1 / P:.3f})")
print(f"training accuracy at step {STEPS}: weight decay {history[-1]['train_acc']:.3f}, no weight decay "
      f"{no_wd.history[-1]['train_acc']:.3f}, shuffled labels {SHUFFLED_TRAIN_ACC:.3f} (on its shuffled labels)")
GROKKED_NORM, MEMORISING_NORM = history[-1]["sum_sq_weights"], shuffled.history[-1]["sum_sq_weights"]
print(f"sum of squared weights at step {STEPS}: grokked {GROKKED_NORM:.0f}, memorising (shuffled labels, same weight "
      f"decay) {MEMORISING_NORM:.0f}, no weight decay {no_wd.history[-1]['sum_sq_weights']:.0f}")
print(f"training loss at step {STEPS}: grokked {history[-1]['train_loss']:.2e}, memorising "
      f"{shuffled.history[-1]['train_loss']:.2e}")

# %% [markdown]
# Without weight decay the network memorises the training set and then makes little progress
# on the test pairs: within this budget nothing pushes it towards the smaller, general
# solution, and its embedding stays spread over many frequencies. With shuffled labels it
# fits its training labels (so "no Fourier structure" does not just mean "learned nothing"),
# does no better than chance on the test pairs at any point, and its embedding stays as
# spread out over the frequencies as at initialisation: the Fourier structure is learned from
# the task, not built into the model.
#
# **Circuit efficiency.** The shuffled run is a pure memorising solution, trained with the same
# weight decay for the same number of steps, and it fits its training set as well as the grokked
# model fits its own. It needs far larger weights to do so (printed above). That is the trade
# Varma et al. put at the centre of grokking: under weight decay, the general circuit is the
# cheaper way to fit the same data. (The comparison is at equal steps, not at convergence:
# both norms are still falling.)

# %%
claim("no_weight_decay_no_grokking", NO_WD_TEST_ACC, "<", 0.5,
      why=f"without weight decay the model should not grok within {STEPS} steps")
claim("shuffled_labels_stay_at_chance", SHUFFLED_MAX_TEST_ACC, "<", 0.1,
      why="with shuffled labels the test accuracy must stay near chance at every logged step")
claim("no_fourier_sparsity_without_rule", sparsity["weight decay"] - sparsity["shuffled labels"], ">", 0.3,
      why="the embedding should concentrate on few frequencies only when there is a rule to learn")
claim("shuffled_labels_memorised", SHUFFLED_TRAIN_ACC, ">=", 0.99,
      why="the shuffled run should fit its own labels: a control that learned nothing would prove nothing")
claim("memorising_needs_larger_weights", MEMORISING_NORM / GROKKED_NORM, ">", 1.25,
      why="at the same weight decay and training accuracy, memorising should need clearly larger weights "
          "(a quarter more) than the general circuit")

# %% [markdown]
# Now the corrupted labels. We measure generalisation (test accuracy) and memorisation (how
# many of the wrong training answers the model reproduces) separately, and also how many of
# the corrupted pairs it answers *correctly*, against its training label, at every
# checkpoint. Doshi et al. report a second stage under weight decay: after generalising, the
# network *unlearns* the corrupted labels and answers those pairs with the true sum. If that
# happens within our budget, the memorised share falls while the true-sum share rises.

# %%
idx = corrupt_data.train_idx
is_bad = corrupt_data.labels[idx] != corrupt_data.clean_labels[idx]
bad, good, test_idx = idx[is_bad], idx[~is_bad], corrupt_data.test_idx
corrupt_steps = sorted(corrupted.checkpoints)
corrupt_timeline = {name: [] for name in ("memorised", "true sum", "test acc")}
for s in corrupt_steps:
    with torch.no_grad():
        guess = corrupted.model_at(s)(corrupt_data.tokens).argmax(-1)
    corrupt_timeline["memorised"].append((guess[bad] == corrupt_data.labels[bad]).double().mean().item())
    corrupt_timeline["true sum"].append((guess[bad] == corrupt_data.clean_labels[bad]).double().mean().item())
    corrupt_timeline["test acc"].append((guess[test_idx] == corrupt_data.clean_labels[test_idx]).double().mean().item())
predictions = guess                                                   # the last checkpoint: the final model
CORRUPT_TEST_ACC = corrupt_timeline["test acc"][-1]
CORRUPT_MEMORISED = corrupt_timeline["memorised"][-1]
CORRUPT_FIXED = corrupt_timeline["true sum"][-1]
CORRUPT_CLEAN_TRAIN = (predictions[good] == corrupt_data.labels[good]).double().mean().item()
first_full = next((s for s, v in zip(corrupt_steps, corrupt_timeline["memorised"]) if v == 1.0), None)
LOWEST_MEMORISED_AFTER = min((v for s, v in zip(corrupt_steps, corrupt_timeline["memorised"])
                              if first_full is not None and s >= first_full), default=float("nan"))
print(f"{len(bad)} corrupted training pairs: {CORRUPT_MEMORISED:.2f} answered with the wrong label they were taught, "
      f"{CORRUPT_FIXED:.2f} with the true sum")
print(f"clean training pairs right: {CORRUPT_CLEAN_TRAIN:.3f}; test accuracy: {CORRUPT_TEST_ACC:.3f}")
print(f"all corrupted pairs memorised from step {first_full}; lowest memorised share after that: "
      f"{LOWEST_MEMORISED_AFTER:.2f}")

fig, ax = plt.subplots(figsize=(8, 3.2))
for name, values in corrupt_timeline.items():
    ax.plot(corrupt_steps, values, label=name if name == "test acc" else f"corrupted pairs: {name}")
ax.set(ylim=(-0.02, 1.05), xlabel="step", title=f"{CORRUPT_FRAC:.0%} corrupted training labels, over training")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Both at once: the network answers the corrupted training pairs with the wrong labels it
# was taught, so it has memorised them, and it answers most new pairs with the true sum, so
# it has learned the rule (compare its test accuracy with the clean run's: the memorised
# exceptions cost a little). Memorisation and generalisation are not two ends of one dial; they
# can live side by side in the same weights (Doshi et al. find the memorising neurons and
# prune them). Look at the memorised share over training (printed above): within this budget,
# at this corruption level, does the second stage come? Doshi et al. see it with more weight
# decay, more corruption and longer training; *Going further* has the knobs.

# %%
claim("corrupted_still_generalises", CORRUPT_TEST_ACC, ">=", 0.8,
      why=f"the rule should still be learned with {CORRUPT_FRAC:.0%} corrupted labels")
claim("corrupted_labels_memorised", CORRUPT_MEMORISED, ">=", 0.9,
      ci=stats.bootstrap_ci((predictions[bad] == corrupt_data.labels[bad]).double()),
      why="...while the wrong labels are memorised: both at once")

# %% [markdown]
# ## What you measured

# %%
record("05_grokking", p=P, frac_train=FRAC_TRAIN, steps=STEPS, checkpoint_every=CHECKPOINT_EVERY,
       steps_to_memorise=MEM_STEP, steps_to_half_test_acc=HALF_CKPT, steps_to_grok=GROK_STEP,
       final_test_acc=FINAL_TEST_ACC, key_freqs=KEY_FREQS, key_freq_share_init=SHARE_INIT,
       key_freq_share_end=SHARE_END, test_acc_at_memorisation=test_acc_at_mem,
       excluded_rise_before_half_acc=EXCLUDED_RISE, excluded_rise_random_p95=RANDOM_RISE_P95,
       excluded_lead_steps=EXCLUDED_LEAD, restricted_lead_steps=RESTRICTED_LEAD,
       gini_memorised_half_end=[GINI_MEM, GINI_HALF, GINI_END],
       ablate_key_logits_test_acc=KEY_ACC, ablate_key_logits_test_loss=KEY_LOSS,
       ablate_random_logits_test_acc_min=RANDOM_ACC_MIN,
       ablate_key_embedding_test_acc=EMB_KEY_ACC, ablate_key_embedding_test_loss=EMB_KEY_LOSS,
       ablate_random_embedding_loss_p95=EMB_RANDOM_LOSS_P95,
       cluster_removes_own_freq={k: own_removed[k] for k in KEY_FREQS},
       cluster_random_p95={k: random_p95[k] for k in KEY_FREQS}, cluster_removes_other_max=CLUSTER_OTHER_MAX,
       neuron_logit_own_share=OWN_SHARE_MEDIAN, neuron_logit_shuffled_p95=SHUFFLED_SHARE_P95,
       sum_sq_weights_grokked=GROKKED_NORM, sum_sq_weights_memorising=MEMORISING_NORM,
       no_weight_decay_test_acc=NO_WD_TEST_ACC, shuffled_max_test_acc=SHUFFLED_MAX_TEST_ACC,
       shuffled_train_acc=SHUFFLED_TRAIN_ACC,
       corrupted_test_acc=CORRUPT_TEST_ACC, corrupted_memorised=CORRUPT_MEMORISED, corrupted_true_sum=CORRUPT_FIXED,
       corrupted_first_fully_memorised=first_full, corrupted_lowest_memorised_after=LOWEST_MEMORISED_AFTER)

# %% [markdown]
# ## Going further
#
# - **The published configuration.** `GLASSBOX_SCALE=full` trains p = 113 on 30% of the pairs
#   with learning rate 1e-3 and weight decay 1.0, the setting of Nanda et al. It groks on a
#   CPU too, given patience (15,000 full-batch steps); `train_grokking` uses the GPU when
#   there is one. `make benchmark` prints what one training step costs on your machine.
# - **Sweep** weight decay and the training fraction and plot steps-to-grok; the cell below
#   runs it at full scale (on a GPU it takes minutes). Smaller training sets need more steps,
#   and below some size the model stops generalising at all (Varma et al. call it the
#   critical dataset size).
# - **Ungrokking**: continue training a grokked model on a much smaller training set
#   (Varma et al., arXiv 2309.02390), and watch the test accuracy fall again.
# - **Corruption and weight decay**: Doshi et al. (arXiv 2310.13061) vary both, and find
#   regimes where the network memorises the corrupted labels alongside the rule, and regimes
#   where weight decay makes it answer them with the true sum. Try weight decay 0.3 and 5, a
#   larger `CORRUPT_FRAC`, and twice the steps, and watch the memorised share over training.
# - Other papers: Gromov 2023, "Grokking modular arithmetic" (arXiv 2301.02679), an MLP with
#   a closed-form solution; Zhong et al. 2023, "The Clock and the Pizza" (arXiv 2306.17844),
#   a second algorithm for the same task.

# %%
RUN_SWEEP = scale(fast=False, full=True)
if RUN_SWEEP:
    sweep = {}
    for wd in (0.3, 1.0, 3.0):
        for frac in (0.2, 0.3, 0.5):
            r = train_grokking(make_data(P, frac, seed=SETUP.seed), STEPS, seed=SETUP.seed, lr=LR, weight_decay=wd,
                               log_every=LOG_EVERY, checkpoint_every=STEPS, desc=f"wd {wd}, frac {frac}")
            sweep[(wd, frac)] = first_step(r.history, "test_acc", 0.95)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for wd in (0.3, 1.0, 3.0):
        fracs = [f for f in (0.2, 0.3, 0.5) if sweep[(wd, f)] is not None]
        ax.plot(fracs, [sweep[(wd, f)] for f in fracs], marker="o", label=f"weight decay {wd}")
    ax.set(xlabel="training fraction", ylabel="steps to 95% test accuracy", yscale="log")
    ax.legend()
    plt.show()
    print(sweep)

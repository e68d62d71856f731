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
# # 04 · Induction heads: watch them form, score them, break them
#
# **What you will learn**
# - train a two-layer attention-only transformer and watch a **phase change**: a long plateau,
#   then a sudden drop in the loss on repeated text, while a one-layer control never gets there;
# - score every head over training: **previous-token**, **induction** (prefix-matching) and
#   **copying** scores, and cross-check your induction score with TransformerLens's head detector;
#   and the eigenvalue copying score of Elhage et al.; compute the **in-context-learning score**;
# - test the circuit causally: ablate the induction heads against random heads, measure how
#   strongly layer-1 keys read layer-0 outputs (**K-composition**) in the weights, and remove that
#   path alone (**path ablation** of keys, queries and values);
# - intervene on training itself as Singh et al. do: **clamp** each half of the circuit (the
#   previous-token head, the induction head's QK match) on several seeds, and measure how much
#   earlier the phase change comes;
# - find induction heads in a real language model and measure what they do for in-context
#   learning on natural text.
#
# **Papers**
# - Elhage et al. 2021, "A Mathematical Framework for Transformer Circuits" (transformer-circuits.pub);
# - Olsson et al. 2022, "In-context Learning and Induction Heads" (arXiv 2209.11895);
# - Singh et al. 2024, "What needs to go right for an induction head?" (arXiv 2404.07129).
#
# **Time**: about 90 minutes. **Runs on**: a laptop CPU (fast scale, a few minutes of compute)
# or a GPU (full scale, the same code with longer training and bigger measurements).

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
SETUP = setup("04_induction_heads")

# %%
import gc
import importlib
import inspect
import itertools
import random

import matplotlib.pyplot as plt
import numpy as np
import torch
from transformer_lens.head_detector import detect_head

from utils import stats
from utils.activations import head_ablation_hooks
from utils.checks.induction import (check_clamp_to_previous, check_copying_score, check_icl_score,
                                    check_induction_score, check_k_composition, check_patch_head,
                                    check_previous_token_score)
from utils.controls import require_disjoint, require_redrawn
from utils.induction import per_token_loss, repeated_segment_batch, repeated_tokens
from utils.data import start_token_id
from utils.models import load_lm, tiny_transformer
from utils.plotting import heatmap, lines, slider_or_static
from utils.report import claim, record
from utils.training import column, train

# %% tags=["parameters"]
D_VOCAB, N_CTX, D_MODEL, N_HEADS = 50, 40, 64, 4   # the toy model and its data
PREV_LAYER, IND_LAYER = 0, 1              # the toy's two layers: previous-token heads, then induction heads
SEG_MIN, SEG_MAX = 10, 20                 # length range of the repeated segment in training rows
BATCH = scale(fast=64, full=128)         # sequences per training step
LR = 2e-3                                 # AdamW learning rate
OTHER_WEIGHT = 0.25                       # weight of the unpredictable tokens in the training loss
STEPS = scale(fast=500, full=3000, smoke=30)  # training steps for each toy model
LOG_EVERY = 10                            # evaluate the loss by position every LOG_EVERY steps
CKPT_EVERY = scale(fast=50, full=100)     # keep a checkpoint every CKPT_EVERY steps
SEG_EVAL, N_EVAL = 16, scale(fast=64, full=512, smoke=16)  # evaluation: a random 16-token segment, then its copy
WINDOW = 150                              # width (steps) of the window in which we look for a sharp drop
LM_SEG, LM_BATCH = scale(fast=10, full=100, smoke=10), scale(fast=8, full=32, smoke=4)  # real-model rows
TOP_K = 5                                 # real-model heads ablated
N_CLAMP_SEEDS = scale(fast=3, full=10, smoke=2)  # seeds of the clamping experiment (part 4)
CLAMP_STEPS = scale(fast=1500, full=3000, smoke=30)  # steps per clamping run at most (each stops at the phase change)
N_KCOMP_NULL = scale(fast=20, full=20, smoke=3) # random initialisations for the K-composition null
N_RANDOM_SETS = scale(fast=20, full=50, smoke=3)  # random head sets in the real-model ablation control
N_DOCS, DOC_LEN = scale(fast=16, full=200, smoke=4), scale(fast=128, full=512)  # natural text: docstrings

# %% [markdown]
# ## 1. A phase change in a tiny transformer
#
# **Question.** An *induction head* completes patterns: having seen `… A B … A`, it predicts
# `B`. It needs two steps — find the earlier `A`, then look at what came *after* it — and a
# single attention layer cannot chain them. Does a two-layer model learn it gradually, or
# suddenly?
#
# **Data.** Each training row is 40 random tokens from a vocabulary of 50, except that a
# segment of random length (10 to 20 tokens) at a random offset is immediately followed by a copy
# of itself. Offset and length vary, so the model cannot find the copy by position: it has to
# read the tokens. The only tokens that *can* be predicted are those inside the copy (after its
# first token); everywhere else the next token is uniformly random and its loss is ln 50 ≈ 3.9
# whatever the model does. So the training loss is the mean loss on the predictable tokens plus a
# quarter of the mean loss on the others: the same problem with less noise in the gradient
# (fewer steps on a CPU), while the model still learns to stay uncertain where nothing can be
# predicted.

# %%
example, predictable = repeated_segment_batch(1, N_CTX, D_VOCAB, SEG_MIN, SEG_MAX,
                                              generator=torch.Generator().manual_seed(SETUP.seed))
print("tokens     ", " ".join(f"{t:2d}" for t in example[0].tolist()))
print("predictable", "   " + " ".join(" ^" if p else "  " for p in predictable[0].tolist()))

# %% [markdown]
# We evaluate on a fixed batch of *repeated random tokens*: a 16-token random segment and then
# the same 16 tokens again. The loss on the second copy (the "repeated half") measures
# induction; the loss on the first copy cannot go below ln 50.
#
# `train_model` trains a fresh model from the same initialisation and on the same batches every
# time it is called (only the architecture or an intervention changes). Every `LOG_EVERY` steps
# it records the evaluation loss at every position, and every `CKPT_EVERY` steps it keeps a copy
# of the weights, so that we can score the heads later at any point of training.

# %%
EVAL_TOKENS = repeated_tokens(N_EVAL, SEG_EVAL, D_VOCAB, generator=torch.Generator().manual_seed(SETUP.seed + 1000),
                              device=SETUP.device)
# per_token_loss index i predicts token i + 1: the first copy's targets are 1..15, the repeat's 17..31
FIRST, REPEAT = slice(0, SEG_EVAL - 1), slice(SEG_EVAL, 2 * SEG_EVAL - 1)


# Which targets of the batch now in the model are predictable by induction ([batch, pos - 1]); part 4's
# induction clamp reads it. On the evaluation batch: the repeated half.
CURRENT = {}
EVAL_PREDICTABLE = torch.zeros(N_EVAL, 2 * SEG_EVAL - 1, dtype=torch.bool, device=SETUP.device)
EVAL_PREDICTABLE[:, REPEAT] = True


def train_model(n_layers: int, hooks=(), seed: int = SETUP.seed, steps: int = STEPS, until=None,
                desc: str = "training"):
    """Train a fresh attention-only model with `hooks` on throughout; return (model, history, checkpoints).

    The seed draws the initialisation and the batches. `until(row)` may stop training early (see `train`)."""
    model = tiny_transformer(n_layers, D_MODEL, N_HEADS, D_VOCAB, N_CTX, seed=seed, device=SETUP.device)
    batches = torch.Generator().manual_seed(seed)            # the same data order for every model of this seed
    checkpoints = {}

    def loss_fn(step):
        tokens, target_mask = repeated_segment_batch(BATCH, N_CTX, D_VOCAB, SEG_MIN, SEG_MAX, generator=batches,
                                                     device=SETUP.device)
        CURRENT["predictable"] = target_mask
        losses = per_token_loss(model(tokens), tokens)
        return losses[target_mask].mean() + OTHER_WEIGHT * losses[~target_mask].mean()

    def on_step(step, model):
        if step % CKPT_EVERY == 0 or step == steps:
            checkpoints[step] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def on_log(step, model):
        CURRENT["predictable"] = EVAL_PREDICTABLE
        by_position = per_token_loss(model(EVAL_TOKENS), EVAL_TOKENS).mean(0).cpu()
        return {"by_position": by_position, "first": by_position[FIRST].mean().item(),
                "repeat": by_position[REPEAT].mean().item()}

    with model.hooks(fwd_hooks=list(hooks)):
        history = train(model, loss_fn, steps, lr=LR, weight_decay=0.01, log_every=LOG_EVERY, on_log=on_log,
                        on_step=on_step, until=until, desc=desc)
    return model, history, checkpoints


# %%
model2, history2, checkpoints2 = train_model(2, desc="2-layer")
steps = np.array(column(history2, "step"))
repeat2, first2 = np.array(column(history2, "repeat")), np.array(column(history2, "first"))
print(f"repeated-half loss: {repeat2[0]:.2f} at step 0 -> {repeat2[-1]:.2f} at step {steps[-1]}")

# %% [markdown]
# **Control.** A one-layer model, trained in exactly the same way. It can still learn something
# useful here: "the next token is probably one I have already seen in this row" (attend to
# earlier tokens and copy them), which is worth about a nat. What it cannot do is look up what
# followed the *earlier copy of the current token*.

# %%
model1, history1, checkpoints1 = train_model(1, desc="1-layer control")
repeat1, first1 = np.array(column(history1, "repeat")), np.array(column(history1, "first"))
print(f"1-layer repeated-half loss: {repeat1[0]:.2f} -> {repeat1[-1]:.2f}")

# %% [markdown]
# **Measurement.** Olsson et al. summarise how much a model uses its context with one number,
# the **in-context-learning (ICL) score**: the loss late in the context minus the loss early in
# the context. The more negative, the more the later tokens gain from what came before.
#
# ### Exercise 1 — the in-context-learning score
# Difficulty 🔴⚪⚪ · Importance 🔵🔵🔵 · ~5 min
#
# Given per-token losses (`per_token_loss`: index `i` is the loss of predicting token `i + 1`),
# return one score per row: the mean loss over the `late` targets minus the mean loss over the
# `early` targets. The two windows need not have the same length.

# %%
def icl_score(loss: torch.Tensor, early: slice, late: slice) -> torch.Tensor:
    """loss: [batch, pos - 1] per-token losses. Returns [batch]: mean of loss[:, late] minus mean of loss[:, early]."""
    raise NotImplementedError("Exercise: write this part. Hint: loss[:, late].mean(1) - loss[:, early].mean(1)")


check_icl_score(icl_score)

# %% [markdown]
# Three views of the same runs:
# - the repeated-half and first-half loss over training, both models;
# - the ICL score over training (early: the first copy; late: the repeated half);
# - the loss at every position × every logged step.
#
# We locate the phase change with the control as the yardstick. The best the one-layer model
# ever does on the repeated half, `floor_1l`, is what attention *without* composition achieves.
# The phase-change step is when the two-layer model's loss crosses halfway between that floor
# and its own final loss. And we look for the largest drop within any `WINDOW`-step window
# after the first `WINDOW` steps (the early, easy learning).

# %%
def largest_drop(losses, steps, window):
    """Largest decrease of the loss between two logged steps at most `window` apart, after step `window`."""
    best = 0.0
    for i, s in enumerate(steps):
        if s < window:
            continue
        j = np.searchsorted(steps, s + window, side="right")
        best = max(best, losses[i] - losses[i:j].min())
    return float(best)


def crossing_step(losses, steps, level):
    """First logged step at which the loss is below `level` (None if never)."""
    below = np.nonzero(losses < level)[0]
    return int(steps[below[0]]) if len(below) else None


floor_1l = float(repeat1.min())
final_2l = float(repeat2[-5:].mean())
level = (floor_1l + final_2l) / 2
phase_step = crossing_step(repeat2, steps, level)
drop_2l, drop_1l = largest_drop(repeat2, steps, WINDOW), largest_drop(repeat1, steps, WINDOW)
icl2, icl1 = (np.array([icl_score(row[None], FIRST, REPEAT).item() for row in column(h, "by_position")])
              for h in (history2, history1))
print(f"1-layer floor {floor_1l:.2f}; 2-layer final {final_2l:.2f}; "
      f"phase change (crossing {level:.2f}) at step {phase_step}")
print(f"largest drop within {WINDOW} steps: 2-layer {drop_2l:.2f} nats, 1-layer {drop_1l:.2f} nats")
# Olsson et al.'s loss bump: does the loss on the unpredictable first half rise while the repeat is being learned?
around = np.abs(steps - phase_step) <= WINDOW
before = steps < max(phase_step - WINDOW, LOG_EVERY + 1)
FIRST_HALF_BUMP = float(first2[around].max() - first2[before].min())
print(f"first-half loss: lowest {first2[before].min():.3f} before the phase change, highest {first2[around].max():.3f} "
      f"within {WINDOW} steps of it (ln {D_VOCAB} = {np.log(D_VOCAB):.3f}): a bump of {FIRST_HALF_BUMP:+.3f} nats")

fig, axes = plt.subplots(1, 3, figsize=(16, 4))
lines(steps, {"2-layer, repeated half": repeat2, "2-layer, first half": first2, "1-layer, repeated half": repeat1,
              "train loss (2-layer)": column(history2, "loss")}, ax=axes[0], title="loss over training",
      xlabel="step", ylabel="loss (nats)")
axes[0].axvline(phase_step, color="k", ls=":")
lines(steps, {"2-layer": icl2, "1-layer": icl1}, ax=axes[1], title="in-context-learning score",
      xlabel="step", ylabel="loss(repeat) - loss(first half)")
by_position = torch.stack(column(history2, "by_position")).T        # [position, logged step]
heatmap(by_position, ax=axes[2], title="2-layer loss by position × step", xlabel=f"step / {LOG_EVERY}",
        ylabel="predicted token position")
axes[2].axhline(SEG_EVAL - 0.5, color="w", lw=0.8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Within a short window, the two-layer model's loss on the repeated half falls far below
# anything the one-layer model ever reaches. In the heatmap, the lower half (the repeat) turns
# dark within a short stretch of training, all its positions together; the upper half (the first
# copy) stays near ln 50. Olsson et al. saw this event in real language models as a *bump* in the
# training loss; in this toy it is a cliff in the repeated-half loss. Is there a bump too, on the
# tokens that cannot be predicted? The printed rise of the first-half loss around the phase
# change says how large it is here: compare it with how far the first-half loss sits from ln 50
# (part of the claims below), and judge whether it is a bump or noise.

# %% [markdown]
# Each of these is one training run per seed (the seed draws the initialisation and the batches),
# so the claims below have no interval; `make seeds` repeats them on other seeds.

# %%
claim("2l_below_1l_floor", floor_1l - final_2l, ">", 1.0,
      why="the 2-layer model should end more than a nat below the best the 1-layer model ever reaches")
claim("phase_change_after_early_learning", phase_step if phase_step is not None else float("nan"), ">=", WINDOW,
      why="the crossing should come after the first WINDOW steps of easy learning")
claim("phase_change_before_the_end", phase_step if phase_step is not None else float("nan"), "<=", STEPS - WINDOW,
      why="...and well before the end of training")
claim("sharp_drop_2l", drop_2l, ">", 1.0,
      why=f"the 2-layer repeated-half loss should drop by more than a nat within {WINDOW} steps")
claim("no_sharp_drop_1l", drop_1l, "<", 0.5, why="the 1-layer control should show no sharp late drop")
claim("icl_2l_beats_1l", icl1[-1] - icl2[-1], ">", 1.0,
      why="the 2-layer model should use its context more than a nat better than the 1-layer control")
claim("first_half_stays_near_ln_vocab", abs(first2[-1] - np.log(D_VOCAB)), "<", 0.3,
      why="on the unpredictable first copy the loss should stay near ln 50")

# %% [markdown]
# ## 2. Head scores over training
#
# An induction head has a partner. In layer 0, a **previous-token head** writes "the token
# before me was A" into each position. In layer 1, the induction head's *query* at the current
# `A` looks for keys that say "the token before me was A" — the position *after* the earlier
# `A` — and its OV circuit copies that position's token, `B`, to the output.
#
# Three scores, each on the evaluation batch (`[batch, head, query, key]` patterns):
#
# ### Exercise 2 — previous-token score
# Difficulty 🔴⚪⚪ · Importance 🔵🔵🔵 · ~5 min
#
# The average attention from each query to the key just before it.

# %%
def previous_token_score(pattern: torch.Tensor) -> torch.Tensor:
    """pattern: [batch, head, q, k] attention probabilities. Returns [head]: the mean over batch
    and over queries q = 1 .. n-1 of pattern[b, h, q, q - 1]."""
    raise NotImplementedError(
        "Exercise: write this part. Hint: torch.diagonal(pattern, offset=-1, dim1=-2, dim2=-1) gives pattern[..., q, "
        "q - 1]"
    )


check_previous_token_score(previous_token_score)

# %% [markdown]
# <details><summary>Hint</summary>
#
# The sub-diagonal of each `[q, k]` matrix holds `pattern[q, q - 1]`; it has `n - 1` entries, one
# per query from 1 on. Average over batch and over that diagonal.
# </details>
#
# ### Exercise 3 — induction (prefix-matching) score
# Difficulty 🔴🔴⚪ · Importance 🔵🔵🔵 · ~10 min
#
# On a sequence whose last `2 * seg_len` tokens are a segment and its copy, a query in the copy at
# position `q` holds the same token as position `q - seg_len`; an induction head attends to the
# token *after* that one, `q - seg_len + 1`. Average that attention over the batch and over the
# queries of the copy (the last `seg_len` positions; anything in front — a BOS token — is ignored).

# %%
def induction_score(pattern: torch.Tensor, seg_len: int) -> torch.Tensor:
    """pattern: [batch, head, q, k]; the last 2*seg_len positions are a segment and its copy.
    Returns [head]: mean over batch and over the last seg_len queries q of pattern[b, h, q, q - seg_len + 1]."""
    raise NotImplementedError(
        "Exercise: write this part. Hint: the diagonal with offset -(seg_len - 1), restricted to its last seg_len "
        "entries"
    )


check_induction_score(induction_score)

# %% [markdown]
# <details><summary>Hint</summary>
#
# `pattern.diagonal(offset=-d, dim1=-2, dim2=-1)[..., i]` is `pattern[..., d + i, i]`, i.e. the
# attention from query `d + i` to key `i`. With `d = seg_len - 1`, the last `seg_len` entries
# are the queries of the copy. A common slip is `d = seg_len`: that scores *duplicate-token*
# heads, which attend to the earlier copy of the current token itself.
# </details>
#
# ### Exercise 4 — copying score
# Difficulty 🔴🔴⚪ · Importance 🔵🔵⚪ · ~10 min
#
# When a head attends to token `t`, what does it write? Its *full OV circuit*
# `W_E @ W_V @ W_O @ W_U` (a `[vocab, vocab]` matrix per head; row = attended token, column =
# output logit) answers for the direct path. A **copying** head raises the attended token's own
# logit most. Score a head by the fraction of tokens `t` whose row has its largest entry at `t`
# (chance: 1 / vocab).

# %%
def copying_score(full_ov: torch.Tensor) -> torch.Tensor:
    """full_ov: [head, vocab, vocab], row = attended token, column = logit. Returns [head]: the fraction
    of rows whose largest entry is on the diagonal."""
    raise NotImplementedError("Exercise: write this part. Hint: compare full_ov.argmax(-1) with torch.arange(vocab)")


check_copying_score(copying_score)

# %% [markdown]
# Now score every head at every checkpoint. The layer-0 heads get a previous-token score, the
# layer-1 heads an induction score, and all heads a copying score (we ignore the layer norms in
# the OV circuit: a direct-path approximation). Next to your argmax score we compute the one
# Elhage et al. use, from the **eigenvalues** of the full OV circuit: their sum over the sum of
# their absolute values, +1 for a circuit that only copies, −1 for one that only suppresses.

# %%
def full_ov_circuit(model) -> torch.Tensor:
    """[layer, head, vocab, vocab]: W_E @ W_V @ W_O @ W_U for every head (layer norms ignored)."""
    W_OV = model.W_V @ model.W_O                                   # [layer, head, d_model, d_model]
    return model.W_E @ W_OV @ model.W_U


def eigen_copying_score(full_ov: torch.Tensor) -> torch.Tensor:
    """[...]: sum of the eigenvalues over the sum of their absolute values, for each [vocab, vocab] matrix.

    Elhage et al.'s measure: a matrix that maps each token mostly onto itself has mostly positive
    eigenvalues (score near +1); one that suppresses what it attends to, near -1. Unlike the argmax
    score it reads the whole matrix, not only which entry of each row is largest.
    """
    eigenvalues = torch.linalg.eigvals(full_ov.double())          # [..., vocab], complex
    return (eigenvalues.sum(-1) / eigenvalues.abs().sum(-1)).real.float()


def score_heads(model, tokens):
    """Previous-token, induction and copying scores, each [layer, head]."""
    _, cache = model.run_with_cache(tokens, names_filter=lambda name: name.endswith("hook_pattern"))
    patterns = [cache[f"blocks.{layer}.attn.hook_pattern"] for layer in range(model.cfg.n_layers)]
    previous = torch.stack([previous_token_score(p) for p in patterns])
    induction = torch.stack([induction_score(p, SEG_EVAL) for p in patterns])
    copying = torch.stack([copying_score(ov) for ov in full_ov_circuit(model)])
    return previous, induction, copying


scratch = tiny_transformer(2, D_MODEL, N_HEADS, D_VOCAB, N_CTX, device=SETUP.device)
ckpt_steps = sorted(checkpoints2)
scores = {"previous": [], "induction": [], "copying": []}
with torch.no_grad():
    for step in ckpt_steps:
        scratch.load_state_dict(checkpoints2[step])
        for name, value in zip(scores, score_heads(scratch, EVAL_TOKENS)):
            scores[name].append(value.flatten().cpu())                # [layer * head]
scores = {name: torch.stack(values, 1) for name, values in scores.items()}   # [layer * head, checkpoint]
head_labels = [f"L{layer}H{head}" for layer in range(2) for head in range(N_HEADS)]

fig, axes = plt.subplots(1, 3, figsize=(16, 3.6))
for ax, (name, values) in zip(axes, scores.items()):
    heatmap(values, ax=ax, title=f"{name} score", xlabel="step", xticks=ckpt_steps, yticks=head_labels)
    ax.axvline(np.searchsorted(ckpt_steps, phase_step) - 0.5, color="w", ls=":")
plt.tight_layout()
plt.show()

# %%
final_prev, final_ind, final_copy = (values[:, -1].view(2, N_HEADS) for values in scores.values())
with torch.no_grad():
    final_eigen = eigen_copying_score(full_ov_circuit(model2)).cpu()   # [layer, head]
# Checkpoint 0 is the initialisation (step s = the weights after s updates); part 3 compares with it too.
init_ind = scores["induction"][:, 0].view(2, N_HEADS)
init_model = tiny_transformer(2, D_MODEL, N_HEADS, D_VOCAB, N_CTX, device=SETUP.device)
init_model.load_state_dict(checkpoints2[0])
# Uniform attention over the q + 1 keys a query sees puts 1 / (q + 1) on the induction target.
uniform_ind = (1 / torch.arange(SEG_EVAL + 1, 2 * SEG_EVAL + 1, dtype=torch.float)).mean().item()
best_ind = int(final_ind[1].argmax())
best_prev = int(final_prev[0].argmax())
print("layer-1 induction scores:", [round(v, 2) for v in final_ind[1].tolist()], "(at initialisation:",
      [round(v, 2) for v in init_ind[1].tolist()], f"; uniform attention would give {uniform_ind:.3f})")
print("layer-0 previous-token scores:", [round(v, 2) for v in final_prev[0].tolist()])
print("copying scores, layer 1:", [round(v, 2) for v in final_copy[1].tolist()], "(chance", 1 / D_VOCAB, ")")
print("eigenvalue copying scores, layer 1:", [round(v, 2) for v in final_eigen[1].tolist()])
best_over_training = scores["induction"][N_HEADS:].max(0).values          # best layer-1 head at each checkpoint
rise_step = ckpt_steps[int(np.nonzero((best_over_training > best_over_training[-1] / 2).numpy())[0][0])]
print(f"the best induction score first passes half its final value at step {rise_step} (phase change: {phase_step})")

# %% [markdown]
# The induction score of one or more layer-1 heads rises at the phase change (the dotted line);
# at initialisation every head scores about what uniform attention gives (printed above). A
# layer-0 head becomes a previous-token head, and
# the best induction head's OV circuit copies: for most tokens, attending to a token raises that
# token's own logit most, and its eigenvalue score (printed above) is close to +1; part 3
# compares it with heads of random weights. Compare *when* the previous-token and induction scores rise: the two
# halves of the circuit are useless without each other.
#
# **Cross-check with a second implementation.** TransformerLens has a head detector,
# `detect_head(model, seq, "induction_head")`. It builds its own detection pattern from the
# tokens (every key that follows an earlier occurrence of the query's token) and returns the
# share of *all* attention that lands there. On a segment without repeated tokens followed by
# its copy, only the `seg_len` queries of the copy can score, out of `2 * seg_len` queries, so
# the detector's number is exactly half of ours. The detector calls `model.to_tokens`, which our
# tokenizer-free toy model lacks, so we hand it a thin wrapper that passes token ids through.

# %%
class TokensPassThrough:
    """Just enough of a model for detect_head: a cfg, to_tokens (identity) and run_with_cache."""

    def __init__(self, model):
        self.model, self.cfg = model, model.cfg

    def to_tokens(self, tokens):
        return tokens

    def run_with_cache(self, tokens, **kwargs):
        return self.model.run_with_cache(tokens, **kwargs)


distinct = repeated_tokens(16, SEG_EVAL, D_VOCAB, generator=torch.Generator().manual_seed(SETUP.seed + 2000),
                           distinct=True, device=SETUP.device)
with torch.no_grad():
    library = torch.stack([detect_head(TokensPassThrough(model2), row[None], "induction_head")
                           for row in distinct]).mean(0)
    _, mine, _ = score_heads(model2, distinct)
agreement = (2 * library.cpu() - mine.cpu()).abs().max().item()
print("ours     ", [[round(v, 3) for v in row] for row in mine.tolist()])
print("2 × TL's ", [[round(v, 3) for v in row] for row in (2 * library).tolist()])
print(f"largest difference {agreement:.2e}")

# %%
# Per evaluation row, for intervals over the rows: the best heads' scores after training.
with torch.no_grad():
    _, final_cache = model2.run_with_cache(EVAL_TOKENS, names_filter=lambda name: name.endswith("hook_pattern"))
ind_rows = torch.stack([induction_score(p[None], SEG_EVAL)
                        for p in final_cache[f"blocks.{IND_LAYER}.attn.hook_pattern"]])
prev_rows = torch.stack([previous_token_score(p[None])
                         for p in final_cache[f"blocks.{PREV_LAYER}.attn.hook_pattern"]])
del final_cache
assert agreement < 1e-3, "our induction score should equal twice TransformerLens's detector score here"   # the code
claim("toy_induction_head_forms", final_ind[1].max(), ">", 0.5, ci=stats.bootstrap_ci(ind_rows[:, best_ind].cpu()),
      why="a layer-1 head should put most of its attention on the induction target after training")
claim("induction_rises_at_phase_change", abs(rise_step - phase_step), "<=", 2 * CKPT_EVERY,
      why="the best induction score should pass half its final value within two checkpoints of the phase change")
claim("toy_previous_token_head_forms", final_prev[0].max(), ">", 0.5,
      ci=stats.bootstrap_ci(prev_rows[:, best_prev].cpu()), why="a layer-0 head should attend to the previous token")
claim("induction_head_copies", final_copy[1, best_ind], ">", 0.5,
      why="the best induction head's OV circuit should copy most tokens (chance: 1 / vocab)")

# %% [markdown]
# ## 3. Causal tests
#
# Scores describe attention; they do not prove the model *uses* it. We **mean-ablate** the
# induction heads (the layer-1 heads whose induction score is above 0.5): their output `hook_z`
# is replaced by its average over the batch and the positions (`head_ablation_hooks(heads,
# "mean")` from `utils.activations`), which keeps what the head does on average and removes what
# depends on the input. Then we measure the loss on the repeated half and on the first half.
# The heads are picked on a separate *selection* batch, so that the ablation is measured on rows
# that played no part in choosing them. **Control**: ablate the same number of heads chosen at
# random among all eight — with so few heads we try every such set instead of sampling.

# %%
select_tokens = repeated_tokens(N_EVAL, SEG_EVAL, D_VOCAB, generator=torch.Generator().manual_seed(SETUP.seed + 4000),
                                device=SETUP.device)
require_disjoint(select_tokens.tolist(), EVAL_TOKENS.tolist(), what="head-selection rows and evaluation rows")
with torch.no_grad():
    _, select_ind, _ = score_heads(model2, select_tokens)
induction_heads = [(1, h) for h in range(N_HEADS) if select_ind[1, h] > 0.5]
print("induction heads (chosen on the selection batch):", induction_heads)
claim("toy_has_induction_head", select_ind[1].max(), ">", 0.5,
      why="a layer-1 head of the trained toy model scores above 0.5 on the selection batch")
if not induction_heads:      # only where the claim is reported (a smoke run): go on with the best head
    induction_heads = [(1, int(select_ind[1].argmax()))]


def eval_losses(model, heads=(), rows=False):
    """(first-half loss, repeated-half loss) on the evaluation batch with `heads` mean-ablated;
    with `rows`, one value per evaluation row instead of the mean."""
    with torch.no_grad():
        logits = model.run_with_hooks(EVAL_TOKENS, fwd_hooks=head_ablation_hooks(heads, "mean"))
        loss = per_token_loss(logits, EVAL_TOKENS).cpu()                   # [batch, pos - 1]
    first, repeat = loss[:, FIRST].mean(1), loss[:, REPEAT].mean(1)
    return (first, repeat) if rows else (first.mean().item(), repeat.mean().item())


clean_first_rows, clean_repeat_rows = eval_losses(model2, rows=True)
ind_first_rows, ind_repeat_rows = eval_losses(model2, induction_heads, rows=True)
clean_first, clean_repeat = clean_first_rows.mean().item(), clean_repeat_rows.mean().item()
ind_first, ind_repeat = ind_first_rows.mean().item(), ind_repeat_rows.mean().item()
all_heads = [(l, h) for l in range(2) for h in range(N_HEADS)]
random_sets = [heads for heads in itertools.combinations(all_heads, len(induction_heads))
               if set(heads) != set(induction_heads)]
random_results = np.array([eval_losses(model2, heads) for heads in random_sets])     # [set, (first, repeat)]
print(f"clean:               first {clean_first:.2f}  repeat {clean_repeat:.2f}")
print(f"induction heads off: first {ind_first:.2f}  repeat {ind_repeat:.2f}")
print(f"random heads off (mean of {len(random_sets)} sets): first {random_results[:, 0].mean():.2f}  "
      f"repeat {random_results[:, 1].mean():.2f}")
worst = random_sets[int(random_results[:, 1].argmax())]
print(f"the most damaging control set is {worst}: repeat {random_results[:, 1].max():.2f}")

fig, ax = plt.subplots(figsize=(6, 3.5))
x = np.arange(2)
ax.bar(x - 0.25, [clean_first, clean_repeat], 0.25, label="clean")
ax.bar(x, [ind_first, ind_repeat], 0.25, label=f"induction heads off ({len(induction_heads)})")
ax.bar(x + 0.25, random_results.mean(0), 0.25, yerr=random_results.std(0), label="random heads off (mean)")
ax.set_xticks(x, ["first half", "repeated half"])
ax.set_ylabel("loss")
ax.legend()
plt.show()

# %% [markdown]
# Removing the induction heads sends the repeated-half loss far back up, while the first half
# barely moves: these heads do nothing for unpredictable tokens. The claims below compare their
# harm with the 95th percentile of the same-size control sets. The average control still hurts,
# because in a model with eight heads most random sets contain part of the circuit. Look at the
# control set that hurts most (printed above): does it hold the previous-token head of layer 0,
# the other half of the circuit?

# %%
harm_induction, harm_induction_ci = stats.paired_bootstrap(ind_repeat_rows, clean_repeat_rows)
random_harms = random_results[:, 1] - clean_repeat
harm_random = random_harms.mean()
harm_random_p95 = float(np.percentile(random_harms, 95))
as_harmful = float((random_results[:, 1] >= ind_repeat).mean())
first_shift = abs(ind_first - clean_first)
first_shift_ci = stats.bootstrap_ci((ind_first_rows, clean_first_rows), lambda a, b: abs(a.mean() - b.mean()))
print(f"harm: induction heads {harm_induction:.2f} nats, random sets {harm_random:.2f} on average "
      f"(95th percentile {harm_random_p95:.2f}); {as_harmful:.0%} of {len(random_sets)} random sets do as much harm")
print(f"the most harmful control set {worst} holds the previous-token head L0H{best_prev}: {(0, best_prev) in worst}")
claim("toy_ablation_harm", harm_induction, ">", 1.0, ci=harm_induction_ci,
      why="ablating the induction heads should raise the repeated-half loss by more than a nat")
claim("toy_ablation_beats_random_p95", harm_induction, ">", harm_random_p95, ci=harm_induction_ci,
      why="induction heads should matter more than 95% of the same-size head sets")
claim("toy_ablation_spares_first_half", first_shift, "<", 0.3, ci=first_shift_ci,
      why="the induction heads should barely affect the unpredictable first half")

# %% [markdown]
# ### Exercise 5 — K-composition
# Difficulty 🔴🔴⚪ · Importance 🔵🔵⚪ · ~10 min
#
# How much do layer-1 *keys* read what a layer-0 head *writes*? Elhage et al. measure it with
# the **K-composition score**: for a writer with OV matrix `W_OV` (`[d_model, d_model]`, acting on
# row vectors: `x @ W_OV`) and a reader with QK matrix `W_QK = W_Q @ W_K.T` (attention score
# `q @ W_QK @ k.T`), the reader's keys see `W_OV`'s output through `W_QK.T`, and the score is
# `||W_OV @ W_QK.T||_F / (||W_OV||_F · ||W_QK||_F)` — the share of the product's size that
# survives composing the two.

# %%
def k_composition(W_OV: torch.Tensor, W_QK: torch.Tensor) -> torch.Tensor:
    """W_OV: [n_writers, d, d] (layer-0 heads); W_QK: [n_readers, d, d] (layer-1 heads).
    Returns [n_writers, n_readers]: ||W_OV[i] @ W_QK[j].T||_F / (||W_OV[i]||_F ||W_QK[j]||_F)."""
    raise NotImplementedError(
        "Exercise: write this part. Hint: broadcast W_OV[:, None] @ W_QK[None].transpose(-1, -2), then "
        "torch.linalg.matrix_norm"
    )


check_k_composition(k_composition)

# %%
def k_composition_of(model):
    with torch.no_grad():
        return k_composition(model.W_V[0] @ model.W_O[0], model.W_Q[1] @ model.W_K[1].transpose(-1, -2))


kcomp_init, kcomp = k_composition_of(init_model), k_composition_of(model2)
kcomp_library = model2.all_composition_scores("K")[0, :, 1, :]
# The level of random weights: every head pair of N_KCOMP_NULL freshly drawn initialisations (none the trained one's).
null_seeds = np.random.default_rng(SETUP.seed).choice(np.arange(SETUP.seed + 1, SETUP.seed + 10_000), N_KCOMP_NULL,
                                                      replace=False)
kcomp_null, eigen_null = [], []
for null_seed in null_seeds:
    null_model = tiny_transformer(2, D_MODEL, N_HEADS, D_VOCAB, N_CTX, seed=int(null_seed), device=SETUP.device)
    require_redrawn(null_model, init_model, what="K-composition null model")
    kcomp_null.append(k_composition_of(null_model).flatten().cpu())
    with torch.no_grad():
        eigen_null.append(eigen_copying_score(full_ov_circuit(null_model)).flatten().cpu())   # also a null for part 2
kcomp_null = torch.cat(kcomp_null)                                  # [N_KCOMP_NULL * head * head]
eigen_null = torch.cat(eigen_null)                                  # [N_KCOMP_NULL * layer * head]
kcomp_null_p95 = kcomp_null.quantile(0.95).item()
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
heatmap(kcomp_init, ax=axes[0], title="K-composition at initialisation", xlabel="layer-1 head", ylabel="layer-0 head")
heatmap(kcomp, ax=axes[1], title="K-composition after training", xlabel="layer-1 head", ylabel="layer-0 head")
plt.tight_layout()
plt.show()
print("K-composition, each layer-0 head into the best induction head:",
      [round(v, 3) for v in kcomp[:, best_ind].tolist()])
print(f"previous-token head L0H{best_prev} -> induction head L1H{best_ind}: {kcomp[best_prev, best_ind]:.3f} "
      f"(at initialisation: {kcomp_init[best_prev, best_ind]:.3f}; {len(kcomp_null)} pairs of random weights: "
      f"median {kcomp_null.median():.3f}, 95th percentile {kcomp_null_p95:.3f})")

# %%
assert torch.allclose(kcomp, torch.as_tensor(kcomp_library).to(kcomp), atol=1e-4), \
    "k_composition should agree with TransformerLens's all_composition_scores"
claim("k_composition_above_random", kcomp[best_prev, best_ind], ">", kcomp_null_p95,
      why="the previous-token head and the best induction head should compose above 95% of random-weight pairs")

# %% [markdown]
# The same random initialisations give a null for the eigenvalue copying score of part 2:
# how positive is the spectrum of an OV circuit nobody trained?

# %%
eigen_null_p95 = eigen_null.quantile(0.95).item()
print(f"eigenvalue copying score of the best induction head L1H{best_ind}: {final_eigen[1, best_ind]:.3f}; "
      f"{len(eigen_null)} heads of random weights: median {eigen_null.median():.3f}, 95th percentile "
      f"{eigen_null_p95:.3f}")
# A random head can come out positive by chance (one in twenty above the 95th percentile), so the claim also asks
# for a spectrum that is mostly copying: more than half of its weight on the positive side.
claim("induction_head_copies_eigenvalues", final_eigen[1, best_ind], ">", 0.5,
      why="the best induction head's OV circuit should mostly copy: its eigenvalues sum to over half their size")
claim("eigen_copying_above_random_heads", final_eigen[1, best_ind], ">", eigen_null_p95,
      why="...and its spectrum should be more positive than 95% of heads with random weights")

# %% [markdown]
# ### K-composition as a path ablation
#
# The K-composition score reads the weights. Does the model *use* that path? A **path
# ablation** removes one route through the network and nothing else: we mean-ablate layer-0
# heads, but only in what the induction heads' **keys** see; their queries and values, and
# every other head, still read the untouched residual stream. In practice: run the model once
# with the layer-0 heads mean-ablated and keep the induction heads' keys (`blocks.1.attn.hook_k`,
# `[batch, pos, head, d_head]`), then run it clean with just those keys patched in. The same for
# queries (`hook_q`) and values (`hook_v`). If induction works by K-composition, the harm is in
# the keys: the query only needs the current token, and the value the attended token itself,
# both in the embedding.
#
# ### Exercise 6 — patch one head's input from another run
# Difficulty 🔴🔴⚪ · Importance 🔵🔵🔵 · ~10 min
#
# Write the hook: given the activation of another run (`patched`, same shape), return a hook
# that replaces the slice of the heads in `heads` and leaves the other heads as they are.

# %%
def patch_head(heads, patched: torch.Tensor):
    """Return hook_fn(activation, hook) for a per-head hook ([batch, pos, head, d_head]) that takes
    activation[:, :, heads] from `patched` (same shape) and every other head from the activation itself.
    `heads`: one head index or a list of them."""
    raise NotImplementedError(
        "Exercise: write this part. Hint: clone the activation, assign activation[:, :, heads] = patched[:, :, heads]"
    )


check_patch_head(patch_head)

# %%
readers = [head for layer, head in induction_heads]                   # layer-1 heads chosen in part 3


def path_harm(writers, kind: str) -> torch.Tensor:
    """[row]: the repeated-half loss increase when the layer-0 `writers` are mean-ablated only in what the
    induction heads' `kind` input (q, k or v) sees."""
    name = f"blocks.{IND_LAYER}.attn.hook_{kind}"
    with torch.no_grad():
        with model2.hooks(fwd_hooks=head_ablation_hooks([(0, w) for w in writers], "mean")):
            _, ablated = model2.run_with_cache(EVAL_TOKENS, names_filter=name)
        logits = model2.run_with_hooks(EVAL_TOKENS, fwd_hooks=[(name, patch_head(readers, ablated[name]))])
    return per_token_loss(logits, EVAL_TOKENS)[:, REPEAT].mean(1).cpu() - clean_repeat_rows


layer0 = list(range(N_HEADS))
path_rows = {kind: path_harm(layer0, kind) for kind in "qkv"}         # all of layer 0, each input in turn
single_k = {w: path_harm([w], "k").mean().item() for w in layer0}      # one layer-0 head at a time, keys only
for kind, rows in path_rows.items():
    print(f"layer 0 removed from the induction heads' {kind}: repeated-half loss {rows.mean():+.2f} nats")
print("keys only, one layer-0 head at a time:", {f"L0H{w}": round(v, 3) for w, v in single_k.items()},
      f"(previous-token head: L0H{best_prev})")
K_PATH_HARM, K_PATH_CI = path_rows["k"].mean().item(), stats.bootstrap_ci(path_rows["k"])
k_over_qv, k_over_qv_ci = stats.paired_bootstrap(path_rows["k"], torch.maximum(path_rows["q"], path_rows["v"]))

# %%
claim("k_path_carries_induction", K_PATH_HARM, ">", 1.0, ci=K_PATH_CI,
      why="removing layer 0 from the induction heads' keys alone should cost the repeated half more than a nat")
claim("k_path_beats_q_and_v_paths", k_over_qv, ">", 0.0, ci=k_over_qv_ci,
      why="...more than removing it from their queries or their values (K-composition, not Q or V)")
K_PATH_LEAD = single_k[best_prev] - max(v for w, v in single_k.items() if w != best_prev)
claim("previous_token_head_k_path_largest", K_PATH_LEAD, ">", 0.0,
      why="of the layer-0 heads one at a time, the previous-token head's path into the keys should matter most")

# %% [markdown]
# ## 4. What needs to go right: clamping each half of the circuit
#
# Singh et al. (2024) ask which pieces of the circuit limit *when* it forms. They "clamp" parts of
# the network during training, like optogenetics. If the previous-token half were handed to the
# model for free from the first step, would the phase change come earlier? And the other half?
#
# ### Exercise 7 — a clamping hook
# Difficulty 🔴🔴⚪ · Importance 🔵🔵🔵 · ~10 min
#
# Write a hook for `blocks.0.attn.hook_pattern` (`[batch, head, query, key]`) that replaces one
# head's pattern by a perfect previous-token pattern: query `q` puts all its attention on key
# `q - 1`; query 0, which has no previous token, attends to itself. The other heads pass through
# unchanged, and gradients must still flow to them.

# %%
def clamp_to_previous(head: int):
    """Return hook_fn(pattern, hook) -> pattern with head `head` clamped to previous-token attention."""
    raise NotImplementedError(
        "Exercise: write this part. Hint: clone the pattern, build a [q, k] one-hot matrix (torch.eye shifted down by"
        " one), assign it"
    )


check_clamp_to_previous(clamp_to_previous)

# %% [markdown]
# **The experiment of Singh et al.** Their model has a single head in its second layer, so that
# exactly one head can become the induction head, and they clamp each half of the circuit:
# - **previous-token head given**: layer-0 head 0 clamped with your hook;
# - **induction QK given**: the layer-1 head's pattern clamped to the ideal induction pattern,
#   the key just after the earlier copy of the current token (`clamp_to_induction`, below; it
#   reads where the copy is from the batch, so it never has to find it);
# - **both given**, and **none** (the same single-head model, unclamped).
#
# Phase changes differ from seed to seed, so each condition runs on `N_CLAMP_SEEDS` seeds, every
# condition of a seed with the same initialisation and batches: the claims are on the *paired*
# differences. A run stops as soon as its repeated-half loss crosses `level` (the yardstick of
# part 1); one that never does within `CLAMP_STEPS` counts as `CLAMP_STEPS`, which understates
# how late it is.

# %%
def clamp_to_induction(head: int):
    """A hook for the induction layer's attn.hook_pattern: head `head` attends, from every query whose next token
    is predictable by induction (CURRENT["predictable"]), to the key just after the earlier copy of its own token;
    other queries spread their attention evenly over the keys they can see."""
    def hook_fn(pattern, hook):
        n = pattern.shape[-1]
        predictable = CURRENT["predictable"][:, :n]                        # [batch, query] (query n - 1 never is)
        causal = torch.ones(n, n, device=pattern.device).tril()
        ideal = (causal / causal.sum(-1, keepdim=True)).expand(pattern.shape[0], n, n).clone()   # [batch, q, k]
        copy_length = predictable.sum(1) + 1                               # the copy's length, per row
        rows, queries = torch.nonzero(predictable, as_tuple=True)
        ideal[rows, queries] = 0.0
        ideal[rows, queries, queries - copy_length[rows] + 1] = 1.0       # the token after the earlier copy
        pattern = pattern.clone()
        pattern[:, head] = ideal.to(pattern.dtype)
        return pattern
    return hook_fn


single_head = head_ablation_hooks([(1, h) for h in range(1, N_HEADS)], "zero")   # only L1H0 writes anything
CONDITIONS = {"none": [],
              "previous-token head given": [(f"blocks.{PREV_LAYER}.attn.hook_pattern", clamp_to_previous(0))],
              "induction QK given": [(f"blocks.{IND_LAYER}.attn.hook_pattern", clamp_to_induction(0))]}
CONDITIONS["both given"] = CONDITIONS["previous-token head given"] + CONDITIONS["induction QK given"]
clamp_seeds = [SETUP.seed * 100 + i for i in range(N_CLAMP_SEEDS)]    # disjoint across GLASSBOX_SEED values
phase = np.zeros((N_CLAMP_SEEDS, len(CONDITIONS)))                       # [seed, condition]: phase-change step
curves = {}
for i, seed in enumerate(clamp_seeds):
    for j, (name, hooks) in enumerate(CONDITIONS.items()):
        _, h, _ = train_model(2, single_head + hooks, seed=seed, steps=CLAMP_STEPS,
                              until=lambda row: row["repeat"] < level, desc=f"seed {seed}, {name}")
        curves[seed, name] = (column(h, "step"), column(h, "repeat"))
        crossed = crossing_step(np.array(column(h, "repeat")), np.array(column(h, "step")), level)
        phase[i, j] = crossed if crossed is not None else CLAMP_STEPS
print("phase-change step (rows: seeds", clamp_seeds, ")")
for j, name in enumerate(CONDITIONS):
    print(f"  {name:<27}", phase[:, j].astype(int).tolist())

fig, ax = plt.subplots(figsize=(9, 3.8))
for (seed, name), (x, y) in curves.items():
    ax.plot(x, y, color=f"C{list(CONDITIONS).index(name)}", lw=1, label=name if seed == clamp_seeds[0] else None)
ax.axhline(level, color="k", ls=":", lw=0.8)
ax.set(xlabel="step", ylabel="repeated-half loss", title=f"one head in layer 1, {N_CLAMP_SEEDS} seeds, each run "
       "stopped at the level")
ax.legend(fontsize=8)
plt.show()

# %%
base = phase[:, 0]
shift = {name: (base - phase[:, j]) / base for j, name in enumerate(CONDITIONS) if j > 0}   # share of the plateau
for name, values in shift.items():
    low, high = stats.bootstrap_ci(values)
    print(f"{name:<27} phase change earlier by {values.mean():.0%} of the unclamped plateau on average "
          f"(per seed {np.round(values, 2).tolist()}; bootstrap over seeds {low:.0%} to {high:.0%})")

# %% [markdown]
# Read the table: which half of the circuit, given for free, saves more of the plateau? When the
# previous-token head is given, the plateau shortens but does not vanish: the induction head's
# QK match and its copying OV still have to be learned. When the QK match is given, what is
# left is to learn to copy, and the table shows how little of the plateau that takes: in this
# toy, finding the match is what the plateau waits for. (The QK clamp reads where the copy is
# from the data, information no real head has; it tells us what is *hard to learn*, not how a
# model learns it.) The claims are on the paired shifts with a bootstrap interval over seeds,
# judged at its lower end: with three seeds that is the smallest seed's shift. The full scale
# runs ten.

# %%
pt_shift, qk_shift = shift["previous-token head given"], shift["induction QK given"]
claim("previous_token_clamp_earlier", pt_shift.mean(), ">", 0.0, ci=stats.bootstrap_ci(pt_shift),
      why="with the previous-token head given, the phase change should come earlier (paired over seeds)")
claim("induction_qk_clamp_earlier", qk_shift.mean(), ">", 0.2, ci=stats.bootstrap_ci(qk_shift),
      why="with the induction head's QK match given, the phase change should come more than 20% earlier")
qk_over_pt, qk_over_pt_ci = stats.paired_bootstrap(qk_shift, pt_shift)
claim("qk_clamp_saves_more_than_previous_token", qk_over_pt, ">", 0.0, ci=qk_over_pt_ci,
      why="giving the QK match should save more of the plateau than giving the previous-token head")

# %% [markdown]
# ## 5. Induction heads in a real language model
#
# The embedded SmolLM2-135M-Instruct (30 layers × 9 heads) was trained on ordinary text. Does it
# have induction heads? We feed it repeated random tokens — nothing it could have memorised — and
# score every head with *your* `induction_score`. The top heads are chosen on a *selection* batch
# and everything we then say about them is measured on a second, disjoint batch.

# %%
lm = load_lm()
n_layers, n_heads = lm.cfg.n_layers, lm.cfg.n_heads
bos = [start_token_id(lm.tokenizer)]               # [<|im_start|>] for SmolLM2
lm_gen = torch.Generator().manual_seed(SETUP.seed + 3000)


def lm_repeated_batch():
    """[LM_BATCH, 1 + 2 * LM_SEG]: BOS, then a random segment of ordinary vocabulary (ids 1000..20999,
    well away from the special tokens at the start), then the same segment again."""
    tokens = repeated_tokens(LM_BATCH, LM_SEG, 20_000, generator=lm_gen, device=lm.cfg.device) + 1000
    return torch.cat([torch.tensor(bos, device=lm.cfg.device).expand(LM_BATCH, len(bos)), tokens], 1)


def lm_induction_scores(tokens):
    """Every head's induction score, per row: [batch, layer, head]; and the per-token loss [batch, pos - 1]."""
    with torch.no_grad():
        logits, cache = lm.run_with_cache(tokens, names_filter=lambda name: name.endswith("hook_pattern"))
    patterns = [cache[f"blocks.{layer}.attn.hook_pattern"] for layer in range(n_layers)]
    per_row = torch.stack([torch.stack([induction_score(p[None], LM_SEG) for p in layer_patterns])
                           for layer_patterns in patterns], 1).cpu()      # [batch, layer, head]
    return per_row, per_token_loss(logits, tokens).cpu()


lm_select, lm_tokens = lm_repeated_batch(), lm_repeated_batch()      # selection rows, evaluation rows
require_disjoint(lm_select.tolist(), lm_tokens.tolist(), what="real-model head-selection and evaluation rows")
select_rows, _ = lm_induction_scores(lm_select)
top_heads = [divmod(int(i), n_heads) for i in select_rows.mean(0).flatten().topk(TOP_K).indices]
lm_ind_rows, lm_loss_rows = lm_induction_scores(lm_tokens)         # held-out: [batch, layer, head]
lm_ind = lm_ind_rows.mean(0)                                          # [layer, head]
top_scores = [lm_ind[l, h].item() for l, h in top_heads]
best_lm_rows = lm_ind_rows[:, top_heads[0][0], top_heads[0][1]]
median_ind = lm_ind.median().item()
lm_loss = lm_loss_rows.mean(0)
heatmap(lm_ind.T, title="SmolLM2 induction scores (repeated random tokens)", xlabel="layer", ylabel="head")
plt.show()
print("top heads (chosen on the selection rows; scores on the evaluation rows):",
      [(f"L{l}H{h}", round(s, 2)) for (l, h), s in zip(top_heads, top_scores)], f"median head {median_ind:.3f}")
print(f"loss on the first copy {lm_loss[1:LM_SEG].mean():.2f}, on the repeat {lm_loss[LM_SEG + 1:].mean():.2f}")

# %%
claim("lm_has_induction_head", top_scores[0], ">", 0.3, ci=stats.bootstrap_ci(best_lm_rows),
      why="the real model's best head (chosen on other rows) should attend strongly to the induction target")
claim("lm_induction_head_far_above_median", top_scores[0] / median_ind, ">", 10,
      ci=stats.bootstrap_ci(lm_ind_rows, lambda rows: rows.mean(0)[top_heads[0]] / np.median(rows.mean(0))),
      why="the best induction head should exceed the median head more than tenfold")

# %% [markdown]
# **Ablation and in-context learning on natural text.** We mean-ablate the top heads and
# measure on the repeated random tokens and on real prose: Python's standard-library docstrings,
# each cut to its first `DOC_LEN` tokens. On the prose we measure
# - the **ICL score**: mean loss late in the text minus early in the text (Olsson et al. compare
#   token 500 with token 50; we compare the last quarter with tokens 10–30);
# - the loss on **repeated bigrams**: tokens `B` that follow an `A` when `A B` already occurred
#   earlier in the same docstring — exactly the tokens an induction step can predict — and the
#   loss on all other tokens.
#
# **Controls**: on the repeated random tokens, `N_RANDOM_SETS` sets of as many heads drawn at
# random from the others; the top heads must do more harm than 95% of them. On the prose, the
# other tokens of the same docstrings: the top heads must hurt the repeated bigrams more than
# them. (Twenty random sets on every docstring would cost twenty more passes over the prose.)

# %%
def stdlib_docstrings(min_tokens: int, n: int, tokenizer_model) -> torch.Tensor:
    """[n, min_tokens] token ids from long docstrings of standard-library classes and functions."""
    modules = ["argparse", "asyncio", "collections", "csv", "datetime", "decimal", "email", "fractions", "functools",
               "heapq", "http.client", "itertools", "json", "logging", "os", "pathlib", "random", "re", "shutil",
               "sqlite3", "statistics", "string", "subprocess", "tempfile", "textwrap", "threading", "typing",
               "unittest", "urllib.request"]
    rows = []
    for name in modules:
        module = importlib.import_module(name)
        for obj in vars(module).values():
            if inspect.isclass(obj) or inspect.isfunction(obj):
                doc = inspect.getdoc(obj)
                if doc and len(doc) > 4 * min_tokens:
                    ids = tokenizer_model.to_tokens(doc)[0]
                    if len(ids) >= min_tokens:
                        rows.append(ids[:min_tokens])
    unique = list({tuple(r.tolist()): r for r in rows}.values())
    random.Random(SETUP.seed).shuffle(unique)
    return torch.stack(unique[:n])


def repeated_bigrams(tokens: torch.Tensor) -> torch.Tensor:
    """[batch, pos - 1] bool, aligned with per_token_loss: True where the target tokens[:, i + 1] completes
    a bigram (tokens[:, i], tokens[:, i + 1]) that already occurred earlier in the row."""
    mask = torch.zeros(tokens.shape[0], tokens.shape[1] - 1, dtype=torch.bool, device=tokens.device)
    for i in range(1, tokens.shape[1] - 1):
        earlier = (tokens[:, :i] == tokens[:, i:i + 1]) & (tokens[:, 1:i + 1] == tokens[:, i + 1:i + 2])
        mask[:, i] = earlier.any(1)
    return mask


docs = stdlib_docstrings(DOC_LEN, N_DOCS, lm).to(lm.cfg.device)
bigram_mask = repeated_bigrams(docs)
EARLY, LATE = slice(10, 30), slice(3 * DOC_LEN // 4, DOC_LEN - 1)


def repeat_loss(heads=()):
    """[batch]: each evaluation row's loss on the repeated half, with `heads` mean-ablated."""
    with torch.no_grad(), lm.hooks(fwd_hooks=head_ablation_hooks(heads, "mean")):
        return per_token_loss(lm(lm_tokens), lm_tokens)[:, LM_SEG + 1:].mean(1).cpu()


def doc_measure(heads=(), chunk=4):
    """With `heads` mean-ablated, per docstring: (ICL score, loss on repeated bigrams, loss on the other tokens).
    Rows go through in chunks: the logits of a whole batch over a 49k vocabulary would take a GB."""
    with torch.no_grad(), lm.hooks(fwd_hooks=head_ablation_hooks(heads, "mean")):
        doc_loss = torch.cat([per_token_loss(lm(rows), rows) for rows in docs.split(chunk)]).cpu()   # [doc, pos - 1]
    mask = bigram_mask.cpu()
    icl = icl_score(doc_loss, EARLY, LATE)
    bigram = (doc_loss * mask).sum(1) / mask.sum(1).clamp_min(1)
    other = (doc_loss * ~mask).sum(1) / (~mask).sum(1)
    return np.stack([icl.numpy(), bigram.numpy(), other.numpy()], 1)      # [doc, 3]


rep_clean, rep_top = repeat_loss(), repeat_loss(top_heads)
pool = [(l, h) for l in range(n_layers) for h in range(n_heads) if (l, h) not in top_heads]
draws = random.Random(SETUP.seed)
random_head_sets = [draws.sample(pool, TOP_K) for _ in range(N_RANDOM_SETS)]
rep_random = np.array([repeat_loss(heads).mean().item() for heads in random_head_sets])
doc_clean, doc_top = doc_measure(), doc_measure(top_heads)
has_bigram = bigram_mask.any(1).cpu().numpy()                      # docstrings with at least one repeated bigram
print(f"{len(docs)} docstrings of {DOC_LEN} tokens, {bigram_mask.float().mean():.0%} of the targets repeated bigrams")
print(f"repeat loss: clean {rep_clean.mean():.2f}, top-{TOP_K} ablated {rep_top.mean():.2f}, random {TOP_K} ablated "
      f"{rep_random.mean():.2f} on average over {N_RANDOM_SETS} sets (highest {rep_random.max():.2f})")
for name, row in [("clean", doc_clean.mean(0)), (f"top-{TOP_K} ablated", doc_top.mean(0))]:
    print(f"{name:<16} ICL score {row[0]:+.3f}  repeated-bigram loss {row[1]:.3f}  other-token loss {row[2]:.3f}")

# %%
harm_top_rep, harm_top_rep_ci = stats.paired_bootstrap(rep_top, rep_clean)
harm_random_rep = rep_random - rep_clean.mean().item()
harm_random_rep_p95 = float(np.percentile(harm_random_rep, 95))
doc_harm = doc_top - doc_clean                                     # [doc, (ICL, bigram, other)]
icl_clean, icl_clean_ci = doc_clean[:, 0].mean(), stats.bootstrap_ci(doc_clean[:, 0])
bigram_harm, bigram_harm_ci = stats.paired_bootstrap(doc_top[has_bigram, 1], doc_clean[has_bigram, 1])
specific, specific_ci = stats.paired_bootstrap(doc_harm[has_bigram, 1], doc_harm[has_bigram, 2])
other_harm, other_harm_ci = doc_harm[:, 2].mean(), stats.bootstrap_ci(doc_harm[:, 2])
icl_change, icl_change_ci = doc_harm[:, 0].mean(), stats.bootstrap_ci(doc_harm[:, 0])
print(f"repeat-loss increase: top heads {harm_top_rep:+.2f} (95% CI {harm_top_rep_ci[0]:+.2f} to "
      f"{harm_top_rep_ci[1]:+.2f}); random sets {harm_random_rep.mean():+.2f} on average, "
      f"95th percentile {harm_random_rep_p95:+.2f}")
print(f"docstrings, top heads off: bigrams {bigram_harm:+.3f}, other tokens {other_harm:+.3f}, "
      f"ICL score {icl_change:+.3f} (95% CI {icl_change_ci[0]:+.3f} to {icl_change_ci[1]:+.3f})")
claim("lm_icl_score_negative", icl_clean, "<", 0.0, ci=icl_clean_ci,
      why="the real model should predict late docstring tokens better than early ones")
claim("lm_ablation_beats_random_p95", harm_top_rep, ">", harm_random_rep_p95, ci=harm_top_rep_ci,
      why=f"ablating the top heads should hurt repeated tokens more than 95% of {N_RANDOM_SETS} random same-size sets")
claim("lm_ablation_hurts_bigrams", bigram_harm, ">", 0.0, ci=bigram_harm_ci,
      why="on prose, ablating the top heads should raise the loss on repeated bigrams")
claim("lm_ablation_specific_to_bigrams", specific, ">", 0.0, ci=specific_ci,
      why="...by more than it raises the loss on the other tokens of the same docstrings")
claim("lm_ablation_spares_other_tokens", other_harm, "<", 0.05, ci=other_harm_ci,
      why="the loss on the other docstring tokens should barely move")
lm = docs = lm_tokens = lm_select = None          # free the real model's memory (about 0.6 GB)
gc.collect()

# %% [markdown]
# Five heads out of 270 carry much of the model's ability to continue a repeated sequence, far
# more than random sets of five. On ordinary prose their job is just as specific: without them
# the loss on repeated bigrams rises, more than the loss on the other tokens, which barely moves.
# The ICL score of the whole text, on the other hand, changes by the amount printed above: at 128
# tokens, most of what the model gains from its context does not go through these five heads. Olsson et al.
# measured the ICL score at token 500 against token 50, where repeats are far more common; try
# the full scale.
#
# ## 6. Scrub through training
#
# Drag the slider to watch the two heads of the circuit form: the best layer-0 previous-token
# head and the best layer-1 induction head, on one evaluation sequence. (Without widgets — in a
# static view or in CI — three checkpoints are drawn instead: start, middle, end.)

# %%
def show_checkpoint(step):
    scratch.load_state_dict(checkpoints2[step])
    with torch.no_grad():
        _, cache = scratch.run_with_cache(EVAL_TOKENS[:1], names_filter=lambda name: name.endswith("hook_pattern"))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    heatmap(cache[f"blocks.{PREV_LAYER}.attn.hook_pattern"][0, best_prev], ax=axes[0],
            title=f"L{PREV_LAYER}H{best_prev} at step {step}",
            xlabel="key", ylabel="query", colorbar=False)
    heatmap(cache[f"blocks.{IND_LAYER}.attn.hook_pattern"][0, best_ind], ax=axes[1],
            title=f"L{IND_LAYER}H{best_ind} at step {step}",
            xlabel="key", ylabel="query", colorbar=False)
    plt.tight_layout()
    plt.show()


slider_or_static(show_checkpoint, ckpt_steps, description="step",
                 static=[ckpt_steps[0], min(ckpt_steps, key=lambda s: abs(s - phase_step)), ckpt_steps[-1]])

# %% [markdown]
# ## What you measured

# %%
record("04_induction_heads",
       phase_change_step=phase_step, clamp_seeds=clamp_seeds,
       clamp_phase_steps={name: phase[:, j].astype(int).tolist() for j, name in enumerate(CONDITIONS)},
       clamp_relative_shift={name: np.round(values, 3).tolist() for name, values in shift.items()},
       eigen_copying_best_induction=final_eigen[1, best_ind], eigen_copying_random_p95=eigen_null_p95,
       path_harm_q_k_v=[path_rows[kind].mean().item() for kind in "qkv"],
       largest_drop_2l=drop_2l, first_half_bump=FIRST_HALF_BUMP, largest_drop_1l=drop_1l, repeat_loss_2l=final_2l,
       repeat_loss_floor_1l=floor_1l,
       icl_score_2l=float(icl2[-1]), icl_score_1l=float(icl1[-1]), induction_score_init=init_ind[1].max(),
       best_induction_score=final_ind[1].max(), best_previous_token_score=final_prev[0].max(),
       detector_max_difference=agreement, ablation_harm_induction=harm_induction,
       ablation_harm_random=float(harm_random), ablation_harm_random_p95=harm_random_p95,
       kcomp_prev_to_induction=kcomp[best_prev, best_ind], kcomp_random_p95=kcomp_null_p95,
       lm_top_heads=[f"L{l}H{h}" for l, h in top_heads],
       lm_top_induction_score=top_scores[0], lm_median_induction_score=median_ind,
       lm_repeat_harm_top=harm_top_rep, lm_repeat_harm_random_p95=harm_random_rep_p95,
       lm_icl_clean=float(icl_clean), lm_icl_change_top_ablated=float(icl_change),
       lm_bigram_harm_top=bigram_harm, lm_other_harm_top=float(other_harm))

# %% [markdown]
# ## Going further
#
# - **Full scale** (`GLASSBOX_SCALE=full`, a GPU or patience): longer training, bigger batches,
#   512 evaluation rows and 200 docstrings of 512 tokens, 20 random head sets.
# - **Vary the data**: shorter or longer segments, several repeats per row, a bigger vocabulary.
#   Singh et al. find that properties of the data move the phase change; measure how.
# - **Clamp the third subcircuit** of Singh et al., the induction head's OV copy, and compare it
#   with the two halves clamped in part 4. Ten seeds (`GLASSBOX_SCALE=full`) narrow the intervals.
# - **Smeared keys** (Olsson et al., arXiv 2209.11895): let each key mix in the previous position's
#   key, so that a *one*-layer model can form induction heads. Does the one-layer control then
#   show a phase change?
# - **Hub models** on a machine with internet: `load_lm("gpt2")` and find its induction heads
#   (often quoted as 5.1, 5.5, 6.9, 7.2, 7.10).
# - Further reading: Reddy 2023, "The mechanistic basis of data dependence and abrupt learning in
#   an in-context classification task" (arXiv 2312.03002); Singh et al. 2023, "The Transient
#   Nature of Emergent In-Context Learning in Transformers" (arXiv 2311.08360).

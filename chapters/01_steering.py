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
# # 01 · Steering vectors, and why they are unreliable
#
# **What you will learn**
# - build a steering vector from one contrast pair (activation addition) and from many pairs
#   (contrastive mean difference), and add it to a real model's residual stream;
# - measure what steering *does* (a dose–response curve) and what it *costs* (KL divergence
#   from the unsteered model on neutral text);
# - measure steerability per example, and find the examples that steer the wrong way;
# - test the vector against its controls: a random vector of equal norm, a vector from
#   shuffled labels, and simply asking in the prompt;
# - see why the direction that best *reads* a feature is not the one that best *writes* it.
#
# **Papers**: Turner et al. 2023, "Steering Language Models With Activation Engineering"
# (arXiv 2308.10248); Rimsky/Panickssery et al. 2023, "Steering Llama 2 via Contrastive
# Activation Addition" (arXiv 2312.06681); Tan et al. 2024, "Analysing the Generalisation and
# Reliability of Steering Vectors" (arXiv 2407.12404); Braun et al. 2025, "Understanding
# (Un)Reliability of Steering Vectors in Language Models" (arXiv 2505.22637); Brumley et al.
# 2024, "Comparing Bottom-Up and Top-Down Steering Approaches on In-Context Learning Tasks"
# (arXiv 2411.07213).
#
# **Time**: about 90 minutes. **Runs on**: CPU (fast scale, a few minutes) or GPU (full
# scale: more pairs, a bigger hub model through the same code).

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
SETUP = setup("01_steering")

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from tqdm.auto import tqdm

from utils import activations as act
from utils import stats
from utils.checks.steering import (check_kl_from_clean, check_readout_directions, check_resid_at_last_token,
                                   check_steerability_slopes)
from utils.contrast_pairs import DATASETS, split
from utils.controls import require_disjoint, require_equal_norm, require_labels_shuffled
from utils.models import load_lm
from utils.plotting import lines, slider_or_static
from utils.report import claim, record

# %% tags=["parameters"]
MODEL_NAME = None                                 # None = the embedded SmolLM2-135M-Instruct
SWEEP_LAYERS = scale(fast=[3, 6, 10, 15, 20], full=list(range(2, 28, 2)))
COEFFS = scale(fast=[0.0, 0.5, 1.0, 2.0, 4.0, 8.0], full=[0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0])
N_TRAIN = scale(fast=12, full=16)                 # contrast pairs per dataset (the rest are test prompts)
MULTIPLIERS = [-1.0, -0.5, 0.0, 0.5, 1.0]
N_RANDOM = scale(fast=20, full=50)                # equal-norm random vectors per control (vs their 95th percentile)
CAA_LAYER = 10
CAA_CLAIMED = ["sentiment", "formality", "french", "topic"]   # datasets with claims against the controls (see part 2)

# %%
model = load_lm(MODEL_NAME)
cfg = model.cfg
generator = torch.Generator().manual_seed(SETUP.seed)
steer, resid_name = act.steering_hook, act.resid_name    # the course's steering hook (one coefficient per row allowed)


def per_row(coeffs, n):
    """Coefficients repeated for ``n`` prompts each: ``[c0]*n + [c1]*n + ...``."""
    return torch.tensor(coeffs, dtype=torch.float32).repeat_interleave(n)


def random_like(vector, n):
    """``n`` random directions, each rescaled to ``vector``'s norm: ``[n, d_model]``."""
    draws = torch.randn(n, vector.shape[-1], generator=generator)
    draws = draws / draws.norm(dim=-1, keepdim=True) * vector.norm()
    require_equal_norm(draws, vector, what="random control vectors")
    return draws

# %% [markdown]
# ## 1. Activation addition: one pair, one layer
#
# Turner et al. take two prompts that differ in the concept we care about — say "Love" and
# "Hate" — run both, and subtract their residual streams at one layer. Adding the difference
# to an unrelated prompt's forward pass nudges the continuation towards the concept.
#
# We use one sentence pair, average over its positions (the first position, the attention
# sink, is left out: its norm is a hundred times the rest and says nothing about the sentence).
#
# Which layer? We try several and keep the best — and a choice must not be judged on the data
# that made it. So the neutral prompts are split in two: half **select** the layer, the other
# half **evaluate** it, together with a control: random vectors of the same norm.

# %%
LOVE = "I love this so much. It is wonderful and it makes me happy."
HATE = "I hate this so much. It is terrible and it makes me angry."
NEUTRAL_PROMPTS = ["Yesterday I went to the", "My neighbour told me that the", "In the morning we usually",
                   "The report on the new road says", "When the bus finally arrived, I", "I think that my new job is",
                   "After lunch, the children", "The letter from the council was", "On the way home we saw a",
                   "The meeting next week will", "Our teacher said that the", "Last summer my family and I",
                   "The shop on the corner has", "At the station there was a", "This afternoon I want to",
                   "The weather forecast for Sunday is"]
prompt_split = stats.split_units(np.arange(len(NEUTRAL_PROMPTS)), fractions=(0.0, 0.5, 0.5))
SELECT, EVALUATE = prompt_split.val, prompt_split.test          # indices into NEUTRAL_PROMPTS
require_disjoint(SELECT, EVALUATE, what="layer-selection and evaluation prompts")
NEUTRAL_TEXT = ("The train leaves the station at nine in the morning and reaches the coast a little after noon. "
                "Passengers can buy tickets at the counter or from the machines near the main entrance.")
TARGET_WORDS = [" love", " wonderful", " happy", " great", " beautiful", " amazing"]
target_ids = torch.tensor([model.to_single_token(w) for w in TARGET_WORDS])


def mean_resid(text, layer):
    """The residual stream at ``layer``, averaged over the text's positions after the first."""
    return act.resid_of_texts(model, [text], [layer], at="all")[layer].mean(0)


def prompt_tokens(prompts):
    """Right-padded tokens ``[batch, pos]`` and each prompt's length."""
    return act.pad_right([model.to_tokens(p)[0].cpu() for p in prompts], model.tokenizer.pad_token_id or 0)


def last_logits(prompts, hooks=()):
    """Logits at each prompt's last real token (prompts are right-padded)."""
    tokens, lengths = prompt_tokens(prompts)
    with torch.no_grad():
        logits = model.run_with_hooks(tokens, fwd_hooks=list(hooks))
    return act.at_last(logits, lengths)

# %% [markdown]
# The **cost** of steering: how far the steered model's next-token distributions move away
# from the unsteered model's on neutral text that has nothing to do with love or hate.
#
# ### Exercise 1 — KL divergence from the clean model
# Difficulty 🔴⚪⚪ · Importance 🔵🔵🔵 · ~10 min
#
# Return the mean over positions of KL(clean ‖ steered), computed from logits.

# %%
def kl_from_clean(clean_logits: torch.Tensor, steered_logits: torch.Tensor) -> torch.Tensor:
    """Mean over positions of KL(P_clean || P_steered). Inputs ``[position, vocab]`` logits; returns a scalar."""
    raise NotImplementedError(
        "Exercise: write this part. Hint: KL(P||Q) = sum_v P(v) (log P(v) - log Q(v)); use log_softmax on both"
    )


check_kl_from_clean(kl_from_clean)

# %% [markdown]
# Now the sweep: for each layer and coefficient, the log-probability of the "love" words at
# the next token of each neutral prompt (the effect), and the KL on neutral text (the cost).

# %%
neutral_tokens = model.to_tokens(NEUTRAL_TEXT)
with torch.no_grad():
    clean_text_logits = model(neutral_tokens)[0, 1:]
pair_vectors = {}
effect_by_prompt = np.zeros((len(SWEEP_LAYERS), len(COEFFS), len(NEUTRAL_PROMPTS)))
cost = np.zeros((len(SWEEP_LAYERS), len(COEFFS)))
for i, layer in enumerate(tqdm(SWEEP_LAYERS, desc="layer sweep")):
    pair_vectors[layer] = mean_resid(LOVE, layer) - mean_resid(HATE, layer)
    # all coefficients in one batch: the prompts (and the neutral text) repeated once per coefficient
    hook = [(resid_name(layer), steer(pair_vectors[layer], per_row(COEFFS, len(NEUTRAL_PROMPTS))))]
    logp = last_logits(NEUTRAL_PROMPTS * len(COEFFS), hook).log_softmax(-1)
    effect_by_prompt[i] = logp[:, target_ids].logsumexp(-1).view(len(COEFFS), -1).numpy()
    with torch.no_grad():
        steered = model.run_with_hooks(neutral_tokens.repeat(len(COEFFS), 1),
                                       fwd_hooks=[(resid_name(layer), steer(pair_vectors[layer], per_row(COEFFS, 1)))])
    cost[i] = [kl_from_clean(clean_text_logits, steered[j, 1:]).item() for j in range(len(COEFFS))]
effect = effect_by_prompt[:, :, SELECT].mean(-1)          # plotted and chosen on: the selection prompts only
fig, axes = plt.subplots(1, 3, figsize=(15, 3.5))
lines(COEFFS, {f"layer {l}": effect[i] for i, l in enumerate(SWEEP_LAYERS)}, ax=axes[0], xlabel="coefficient",
      ylabel="log P(a love word)", title="effect")
lines(COEFFS, {f"layer {l}": cost[i] for i, l in enumerate(SWEEP_LAYERS)}, ax=axes[1], xlabel="coefficient",
      ylabel="KL from clean (nats)", title="cost")
for i, layer in enumerate(SWEEP_LAYERS):
    axes[2].plot(cost[i], effect[i] - effect[i, 0], "o-", label=f"layer {layer}")
axes[2].set(xlabel="cost: KL (nats)", ylabel="effect: gain in log P", title="what you get for what you pay",
            xscale="symlog")
axes[2].legend()
plt.tight_layout()
plt.show()

# %%
gain = effect - effect[:, :1]
one, half = COEFFS.index(1.0), COEFFS.index(0.5)
layer_choice = stats.choose({layer: gain[i, one] for i, layer in enumerate(SWEEP_LAYERS)}, chosen_on=SELECT)
require_disjoint(layer_choice, EVALUATE, what="layer-selection and evaluation prompts")
ACTADD_LAYER = layer_choice.option
best = SWEEP_LAYERS.index(ACTADD_LAYER)
print("gain in log P on the selection prompts, by layer (rows) and coefficient (columns):\n", np.round(gain, 2))
print(f"layer chosen on {len(SELECT)} selection prompts: {ACTADD_LAYER}; KL by coefficient:", np.round(cost[best], 3))

# On the held-out evaluation prompts: the gain at coefficient 1, against random vectors of the same norm.
held_out = effect_by_prompt[best][:, EVALUATE]                                    # [coeff, prompt]
eval_prompts = [NEUTRAL_PROMPTS[i] for i in EVALUATE]
random_vectors = random_like(pair_vectors[ACTADD_LAYER], N_RANDOM)
per_prompt_vectors = random_vectors.repeat_interleave(len(EVALUATE), 0)[:, None]   # one random vector per row
with act.edit_resid(model, ACTADD_LAYER, lambda x: x + per_prompt_vectors.to(x)):
    random_logp = last_logits(eval_prompts * N_RANDOM).log_softmax(-1)
random_gain = (random_logp[:, target_ids].logsumexp(-1).view(N_RANDOM, -1).numpy() - held_out[0]).mean(1)
actadd_gain = stats.paired_bootstrap(held_out[one], held_out[0])
print(f"held-out gain at coefficient 1: {actadd_gain.value:+.2f}; {N_RANDOM} random vectors of equal norm: "
      f"median {np.median(random_gain):+.2f}, 95th percentile {np.percentile(random_gain, 95):+.2f}")
claim("actadd_beats_random", actadd_gain.value, ">", np.percentile(random_gain, 95), ci=actadd_gain.ci,
      why="on held-out prompts the love-hate vector raises log P(love words) more than 95% of random vectors")
step = stats.paired_bootstrap(held_out[one], held_out[half])
claim("actadd_effect_rises", step.value, ">", 0.0, ci=step.ci,
      why="on held-out prompts, coefficient 1 raises log P(love words) more than coefficient 0.5")
claim("actadd_cost_rises", np.diff(cost[best]).min(), ">", 0.0,
      why="the KL on neutral text grows with every step of the coefficient")
peak = COEFFS[int(np.argmax(held_out.mean(1)))]
print(f"on held-out prompts the effect peaks at coefficient {peak} (of {COEFFS}); "
      f"KL there {cost[best, COEFFS.index(peak)]:.2f},"
      f" at the largest coefficient {cost[best, -1]:.2f}")

# %% [markdown]
# The effect rises with the coefficient (the claims above, on prompts that did not choose the
# layer) — and so does the cost: compare the printed KL at the effect's peak with the KL at the
# largest coefficient. Read the continuations: at small coefficients the text drifts towards
# the concept; at large ones it stops being text.

# %%
def continuation(coeff, layer=ACTADD_LAYER, prompt="Yesterday I went to the", n=16):
    with model.hooks(fwd_hooks=[(resid_name(layer), steer(pair_vectors[layer], coeff))]):
        return model.generate(prompt, max_new_tokens=n, do_sample=False, verbose=False)


for c in (0.0, 4.0, 16.0):
    print(f"coefficient {c:>4}: {continuation(c)!r}")

# %% [markdown]
# Try it yourself: the slider regenerates the continuation (without widgets, a few fixed
# coefficients are shown instead).

# %%
slider_or_static(lambda coefficient: print(f"{coefficient:>5}: {continuation(coefficient)!r}"),
                 values=[0.0, 1.0, 2.0, 4.0, 8.0, 16.0], description="coefficient", static=[1.0, 8.0])

# %% [markdown]
# ## 2. Contrastive vectors from many pairs
#
# One pair is noisy. Contrastive activation addition (CAA) averages the difference over many
# pairs that share a prompt and differ only in the completion: the residual stream at the
# completion token of `prompt + positive` minus that of `prompt + negative`. We build five
# small behaviour datasets (`utils/contrast_pairs.py`), each with a behaviour score we can
# read directly: `logit(positive) − logit(negative)` at the next token of a *held-out* prompt.
#
# ### Exercise 2 — the residual stream at the last token
# Difficulty 🔴🔴⚪ · Importance 🔵🔵🔵 · ~10 min
#
# Prompts of different lengths are padded on the right, so "the last position" is not the
# same index for every row.

# %%
def resid_at_last_token(model, texts: list[str], layer: int) -> torch.Tensor:
    """``blocks.{layer}.hook_resid_pre`` at each text's last real token. Returns ``[len(texts), d_model]``."""
    raise NotImplementedError(
        "Exercise: write this part. Hint: pad on the right, find each text's own length, then index row i at length_i"
        " - 1"
    )


check_resid_at_last_token(resid_at_last_token, model)

# %%
splits = {name: split(items, N_TRAIN, SETUP.seed) for name, items in DATASETS.items()}


def pair_activations(items, layer=CAA_LAYER):
    """Activations at the completion token: ``(positive [n, d], negative [n, d])``."""
    return (resid_at_last_token(model, [it.prompt + it.positive for it in items], layer),
            resid_at_last_token(model, [it.prompt + it.negative for it in items], layer))


def behaviour(items, hooks=()):
    """``logit(positive) - logit(negative)`` at the next token of each prompt."""
    logits = last_logits([it.prompt for it in items], hooks)
    pos = torch.tensor([model.to_single_token(it.positive) for it in items])
    neg = torch.tensor([model.to_single_token(it.negative) for it in items])
    rows = torch.arange(len(items))
    return logits[rows, pos] - logits[rows, neg]


acts = {name: pair_activations(train) for name, (train, test) in splits.items()}
caa_vectors = {name: (pos - neg).mean(0) for name, (pos, neg) in acts.items()}
print({name: round(v.norm().item(), 1) for name, v in caa_vectors.items()})

# %% [markdown]
# ### Exercise 3 — per-example steerability
# Difficulty 🔴🔴⚪ · Importance 🔵🔵🔵 · ~10 min
#
# For each test prompt we measure the behaviour score at several multipliers of the vector.
# Its **steerability** (Tan et al.) is the slope of a straight line fitted to score against
# multiplier — with an intercept, since the unsteered score is not zero.

# %%
def steerability_slopes(multipliers: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """Least-squares slope of score against multiplier, per example.

    multipliers: ``[n_mult]``; scores: ``[n_mult, n_examples]``. Returns ``[n_examples]``.
    """
    raise NotImplementedError(
        "Exercise: write this part. Hint: slope = cov(m, s) / var(m); centre both before multiplying"
    )


check_steerability_slopes(steerability_slopes)

# %% [markdown]
# Now the vectors meet their **controls**, each rescaled to the CAA vector's norm:
# - **random** directions — does *any* push of this size do the same? One random vector can
#   push a lot by luck, so we draw `N_RANDOM` of them per dataset and compare the CAA vector
#   with the 95th percentile of their effects (in absolute value: a random vector's sign is
#   arbitrary). To afford that many, each random vector is measured at multiplier +1 only, as
#   the shift `score(+1) − score(0)`, and the CAA vector is compared on the same shift;
# - a **shuffled-label** vector: deal the activations at random into two groups, each with
#   as many true positives as negatives, and take the difference of the group means. It is
#   built from the same activations as the CAA vector, but the labels are noise. Two tempting
#   shuffles are no control at all: re-matching *which* pairs are subtracted leaves the mean
#   difference unchanged, and a fully random split (or random sign flips) mostly recovers
#   ± the CAA direction itself when the classes are well separated.
#
# Every vector is added at the same layer, so the layers below it are the same for all of
# them: we run them once per prompt, keep the residual stream there, and start each steered
# forward pass at that layer (`start_at_layer`). The unsteered scores (multiplier 0) are
# shared by every vector.

# %%
def equal_norm(vector, like):
    return vector / vector.norm() * like.norm()


def prompt_resid(items, layer=CAA_LAYER):
    """The residual stream entering ``layer`` for each prompt (right-padded), and the prompts' lengths."""
    tokens, lengths = prompt_tokens([it.prompt for it in items])
    return act.resid_batch(model, tokens, [layer])[layer], lengths


def steered_scores(items, cached, vectors, multipliers, layer=CAA_LAYER, max_rows=120):
    """Behaviour scores with ``m * v`` added at ``layer``: ``[n_vectors, n_multipliers, n_items]``."""
    resid, lengths = cached
    pos = torch.tensor([model.to_single_token(it.positive) for it in items])
    neg = torch.tensor([model.to_single_token(it.negative) for it in items])
    coeffs = torch.as_tensor(multipliers, dtype=torch.float32)
    deltas = (coeffs[None, :, None] * vectors[:, None, :]).reshape(-1, cfg.d_model)
    per_pass = max(1, max_rows // len(items))
    out = []
    with torch.no_grad():
        for chunk in deltas.split(per_pass):
            x = (resid[None] + chunk[:, None, None, :].to(resid)).flatten(0, 1)          # [chunk * n_items, pos, d]
            last = act.at_last(model(x, start_at_layer=layer), lengths.repeat(len(chunk))).float().cpu()
            rows = torch.arange(len(x))
            out.append(last[rows, pos.repeat(len(chunk))] - last[rows, neg.repeat(len(chunk))])
    return torch.cat(out).view(len(vectors), len(multipliers), len(items))


NONZERO = [m for m in MULTIPLIERS if m != 0]


def slopes_for(vectors, items, cached, unsteered):
    """Per-prompt steerability of each vector ``[n_vectors, n_items]`` from all MULTIPLIERS (0 shared), and the
    scores ``[n_vectors, n_multipliers, n_items]``."""
    scores = steered_scores(items, cached, vectors, NONZERO)
    full = torch.stack([unsteered.expand(len(vectors), -1) if m == 0 else scores[:, NONZERO.index(m)]
                        for m in MULTIPLIERS], dim=1)
    return torch.stack([steerability_slopes(torch.tensor(MULTIPLIERS), full[j]) for j in range(len(vectors))]), full


def shuffled_label_vector(pos, neg):
    """Labels dealt at random, but each half gets the same number of true positives and negatives."""
    half = len(pos) // 2
    p, n = pos[torch.randperm(len(pos), generator=generator)], neg[torch.randperm(len(neg), generator=generator)]
    groups = torch.cat([torch.ones(half), torch.zeros(len(pos) - half), torch.ones(half), torch.zeros(len(neg) - half)])
    require_labels_shuffled(groups, torch.cat([torch.ones(len(pos)), torch.zeros(len(neg))]), what="shuffled groups")
    return torch.cat([p[:half], n[:half]]).mean(0) - torch.cat([p[half:2 * half], n[half:2 * half]]).mean(0)


# The cached path must give what a steering hook on the full forward pass gives (a sanity check of the code).
name0, (_, test0) = next(iter(splits.items()))
with torch.no_grad():
    via_hook = behaviour(test0[:3], [(resid_name(CAA_LAYER), steer(caa_vectors[name0], 1.0))])
assert torch.allclose(steered_scores(test0[:3], prompt_resid(test0[:3]), caa_vectors[name0][None], [1.0])[0, 0],
                      via_hook, atol=1e-2), "steering from the cached residual stream should match the hook"

results, random_slopes, two_point = {}, {}, {}
for name, (train, test) in tqdm(splits.items(), desc="datasets"):
    v = caa_vectors[name]
    cached, unsteered = prompt_resid(test), behaviour(test)
    shuffled = equal_norm(shuffled_label_vector(*acts[name]), v)
    require_equal_norm(shuffled, v, what="shuffled-label vector")
    (caa, shuf), scores = slopes_for(torch.stack([v, shuffled]), test, cached, unsteered)
    results[name] = {"CAA": caa, "shuffled labels": shuf}
    random_scores = steered_scores(test, cached, random_like(v, N_RANDOM), [1.0])[:, 0]      # [draw, prompt]
    random_slopes[name] = (random_scores - unsteered).mean(1).numpy()                       # one mean shift per draw
    two_point[name] = (scores[0, MULTIPLIERS.index(1.0)] - unsteered).numpy()                # one shift per prompt

fig, ax = plt.subplots(figsize=(11, 4))
boxes = {"CAA": lambda n: results[n]["CAA"].numpy(), "random (mean shift at +1, per draw)": lambda n: random_slopes[n],
         "shuffled labels": lambda n: results[n]["shuffled labels"].numpy()}
for k, (kind, values) in enumerate(boxes.items()):
    ax.boxplot([values(n) for n in splits], positions=np.arange(len(splits)) * 4 + k, widths=0.8,
               patch_artist=True, boxprops={"facecolor": f"C{k}"}, label=kind)
ax.axhline(0, color="grey", lw=0.5)
ax.set_xticks(np.arange(len(splits)) * 4 + 1, list(splits))
ax.set(ylabel="steerability (logit diff per unit multiplier)", title="steerability on held-out prompts")
ax.legend()
plt.show()

summary = {n: {kind: s.mean().item() for kind, s in r.items()} for n, r in results.items()}
anti_steerable = {n: (r["CAA"] < 0).float().mean().item() for n, r in results.items()}
for n in splits:
    s = results[n]["CAA"]
    print(f"{n:>10}: CAA {summary[n]['CAA']:+.2f} (prompts from {s.min():+.2f} to {s.max():+.2f}, "
          f"anti-steerable {anti_steerable[n]:.0%})  shuffled {summary[n]['shuffled labels']:+.2f}")

# %% [markdown]
# Two things to see. Compare the CAA boxes with the controls, dataset by dataset (printed
# below). The claims cover the four datasets in `CAA_CLAIMED`; **agreement** is left out of
# them and only printed, because there the controls are not beaten reliably: compare its CAA
# shift with the random percentile, and its CAA − shuffled interval with 0. A vector that does
# not beat random pushes of its own size has not shown that it steers this behaviour. Then
# look at the spread *within* each CAA box: the printed range says how unevenly
# the same vector moves different prompts. Tan et al. found, on 7B models and dozens of
# datasets, that this spread is large and that a sizeable fraction of examples are
# **anti-steerable** (their behaviour moves the wrong way). The printed anti-steerable shares
# are what this small model shows on these templated prompts; where they are 0%, we do not
# reproduce that finding here — every held-out prompt moves the right way, by different amounts.

# %%
random_p95 = {n: float(np.percentile(np.abs(r), 95)) for n, r in random_slopes.items()}
vs_shuffled = {n: stats.paired_bootstrap(results[n]["CAA"].numpy(), results[n]["shuffled labels"].numpy())
               for n in splits}
for n in splits:
    print(f"{n:>10}: CAA shift at +1 {two_point[n].mean():+.2f} vs 95th percentile of |{N_RANDOM} random| "
          f"{random_p95[n]:.2f};  CAA − shuffled {vs_shuffled[n].value:+.2f} "
          f"(95% CI {vs_shuffled[n].ci[0]:+.2f} to {vs_shuffled[n].ci[1]:+.2f})")
for n in CAA_CLAIMED:
    claim(f"caa_beats_random_{n}", two_point[n].mean(), ">", random_p95[n], ci=stats.bootstrap_ci(two_point[n]),
          why=f"on {n}, the CAA vector steers more than 95% of equal-norm random vectors")
for n in CAA_CLAIMED:
    claim(f"caa_beats_shuffled_{n}", vs_shuffled[n].value, ">", 0.0, ci=vs_shuffled[n].ci,
          why=f"on {n}, the labels matter: the shuffled-label vector steers less than the CAA vector")

# %% [markdown]
# ### A prompting baseline
# Steering is only worth its cost if it does something prompting cannot. Here is the
# cheapest alternative: ask for the behaviour in the prompt.

# %%
INSTRUCTIONS = {"sentiment": "Say something nice. ", "formality": "Write very formally. ",
                "french": "Écris en français. ", "topic": "Let's talk about sport. ", "agreement": "Always agree. "}
prompting = {}
for name, (train, test) in splits.items():
    instructed = [type(it)(INSTRUCTIONS[name] + it.prompt, it.positive, it.negative) for it in test]
    prompting[name] = (behaviour(instructed) - behaviour(test)).mean().item()
steer_plus_one = {n: summary[n]["CAA"] for n in splits}   # the slope: the shift at multiplier +1
for n in splits:
    print(f"{n:>10}: shift from the instruction {prompting[n]:+.2f}   "
          f"from steering at multiplier +1 {steer_plus_one[n]:+.2f}")

# %% [markdown]
# ## 3. When does steering work? The reliability analysis
#
# Braun et al. ask what predicts a dataset's steerability before steering at all. Two
# properties of the training activations: do the individual pair differences point the same
# way (their mean pairwise **cosine similarity**), and are positive and negative activations
# **separated** along the vector? For separation we use the discriminability d′ of held-out
# activations projected on the vector (difference of class means over the pooled standard
# deviation). AUROC would be the other natural choice, but here every dataset reaches an
# AUROC of 1 — the completion tokens differ — so it cannot rank datasets.

# %%
reliability = {}
for name, (train, test) in splits.items():
    diffs = acts[name][0] - acts[name][1]
    cos = F.cosine_similarity(diffs[:, None], diffs[None], dim=-1)
    mean_cos = cos[~torch.eye(len(diffs), dtype=torch.bool)].mean().item()
    test_pos, test_neg = pair_activations(test)
    v = caa_vectors[name]
    proj_pos, proj_neg = (test_pos @ v / v.norm()).numpy(), (test_neg @ v / v.norm()).numpy()
    d_prime = (proj_pos.mean() - proj_neg.mean()) / np.sqrt((proj_pos.var() + proj_neg.var()) / 2)
    auroc = roc_auc_score(np.r_[np.ones(len(test)), np.zeros(len(test))], np.r_[proj_pos, proj_neg])
    reliability[name] = {"cosine": mean_cos, "d_prime": d_prime, "auroc": auroc, "steerability": summary[name]["CAA"]}

fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for ax, key in zip(axes, ["cosine", "d_prime"]):
    xs = [reliability[n][key] for n in splits]
    ys = [reliability[n]["steerability"] for n in splits]
    ax.scatter(xs, ys)
    for n, x, y in zip(splits, xs, ys):
        ax.annotate(n, (x, y))
    ax.set(xlabel="training pair-difference cosine" if key == "cosine" else "held-out separation d′",
           ylabel="mean steerability")
plt.tight_layout()
plt.show()
print({n: {k: round(float(v), 2) for k, v in r.items()} for n, r in reliability.items()})
steerability = [reliability[n]["steerability"] for n in splits]
rank_tests = {key: stats.permutation_test([reliability[n][key] for n in splits], steerability, kind="spearman",
                                          alternative="greater") for key in ("cosine", "d_prime")}
rho_cos, rho_sep = rank_tests["cosine"].value, rank_tests["d_prime"].value
for key, test_ in rank_tests.items():
    verdict = "significant" if test_.p_value < 0.05 else "not significant"
    print(f"Spearman ρ of {key} with steerability over {len(splits)} datasets: {test_.value:+.2f}, "
          f"one-sided permutation p = {test_.p_value:.2f} ({verdict} at 5%)")

# %% [markdown]
# Braun et al. report clear positive correlations over dozens of datasets on 7B models. With
# five datasets there are only 120 orderings, so even a perfect rank correlation has a
# one-sided p-value of about 1/120, and a single dataset moves ρ by a lot: the permutation p-values
# printed above say whether *this* setting shows a correlation at all. No claim is made here;
# this is a measurement of this small setting, not a test of the paper. The full scale adds
# pairs; a bigger hub model and more datasets are the way to a
# real test (see "Going further").

# %% [markdown]
# ## 4. The direction that reads is not the direction that writes
#
# A linear probe finds a direction whose dot product with the activation *reads out* a
# feature. Steering needs the direction along which the model *represents* the feature. When
# features are not orthogonal these differ — and steering along the probe direction also
# moves the other features.
#
# A toy world: `k` features with values `f`, written into `d` dimensions as `x = D f`, where
# the columns of `D` (the representation vectors) overlap. The exact readout of every feature
# is `f = R x` with `R` the pseudo-inverse of `D`: the rows of `R` are the ideal probes.
#
# ### Exercise 4 — readout (probe) directions
# Difficulty 🔴🔴⚪ · Importance 🔵🔵⚪ · ~10 min

# %%
def readout_directions(D: torch.Tensor) -> torch.Tensor:
    """Rows ``r_i`` with ``r_i · (D f) = f_i`` for every ``f``. D: ``[d, k]`` (k ≤ d); returns ``[k, d]``."""
    raise NotImplementedError("Exercise: write this part. Hint: the Moore-Penrose pseudo-inverse; torch.linalg has it")


check_readout_directions(readout_directions)

# %%
d, k = 32, 6
base = torch.randn(d, k, generator=generator)
shared = torch.randn(d, 1, generator=generator)
D = F.normalize(base + 1.2 * shared, dim=0)          # unit representation vectors that overlap (cos ~ 0.5)
R = readout_directions(D)
print("mean |cos| between representation vectors:", (D.T @ D - torch.eye(k)).abs().sum().item() / (k * (k - 1)))


def feature_change(v, target=0):
    """Steer along v, scaled so the target feature rises by exactly 1; report all features' changes."""
    change = R @ v
    return change / change[target]


rep_change, probe_change = feature_change(D[:, 0]), feature_change(R[0])
# Steering along D[:, 0] moves only feature 0 by construction (R D = I): an identity, not a measurement.
assert torch.allclose(R @ D, torch.eye(k), atol=1e-4)
off_target = {"representation": rep_change[1:].norm().item(), "probe": probe_change[1:].norm().item()}
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(np.arange(k) - 0.2, rep_change.numpy(), 0.4, label="steer along D[:, 0] (representation)")
ax.bar(np.arange(k) + 0.2, probe_change.numpy(), 0.4, label="steer along R[0] (probe)")
ax.set(xlabel="feature", ylabel="change", title="raising feature 0 by one unit")
ax.legend()
plt.show()
print("off-target change (representation: zero by construction):", {k_: round(v_, 3) for k_, v_ in off_target.items()})
claim("toy_probe_off_target", off_target["probe"], ">", 0.1,
      why="with overlapping features, raising feature 0 along its probe moves the others by over a tenth as much")

# %% [markdown]
# A learned probe behaves like `R[0]`, not like `D[:, 0]`: logistic regression on samples
# of this toy world recovers the readout direction.

# %%
n_samples = 4000
f = (torch.rand(n_samples, k, generator=generator) < 0.5).float()
x = f @ D.T + 0.05 * torch.randn(n_samples, d, generator=generator)
probe = LogisticRegression(C=10.0, max_iter=2000).fit(x.numpy(), f[:, 0].numpy())
w = torch.tensor(probe.coef_[0], dtype=torch.float32)
cos_probe = {"with R[0]": F.cosine_similarity(w, R[0], dim=0).item(),
             "with D[:, 0]": F.cosine_similarity(w, D[:, 0], dim=0).item()}
print({k_: round(v_, 2) for k_, v_ in cos_probe.items()})
claim("learned_probe_is_readout", cos_probe["with R[0]"] - cos_probe["with D[:, 0]"], ">", 0.0,
      why="logistic regression recovers the readout direction R[0] better than the representation D[:, 0]")

# %% [markdown]
# Back to the real model: steer sentiment with a logistic-regression probe direction instead
# of the mean difference, at the same norm, and compare effect and cost.

# %%
pos, neg = acts["sentiment"]
lr = LogisticRegression(C=1.0, max_iter=5000).fit(torch.cat([pos, neg]).numpy(),
                                                   np.r_[np.ones(len(pos)), np.zeros(len(neg))])
probe_vector = equal_norm(torch.tensor(lr.coef_[0], dtype=torch.float32), caa_vectors["sentiment"])
test = splits["sentiment"][1]
probe_slope = slopes_for(probe_vector[None], test, prompt_resid(test), behaviour(test))[0].mean().item()
caa_slope = summary["sentiment"]["CAA"]


def neutral_cost(vector, coeff=2.0, layer=CAA_LAYER):
    with torch.no_grad():
        steered = model.run_with_hooks(neutral_tokens, fwd_hooks=[(resid_name(layer), steer(vector, coeff))])[0, 1:]
    return kl_from_clean(clean_text_logits, steered).item()


print(f"cosine(probe, CAA) = {F.cosine_similarity(probe_vector, caa_vectors['sentiment'], dim=0):.2f}")
print(f"steerability: CAA {caa_slope:+.2f}, probe {probe_slope:+.2f};  "
      f"KL at multiplier 2: CAA {neutral_cost(caa_vectors['sentiment']):.3f}, probe {neutral_cost(probe_vector):.3f}")

# %% [markdown]
# When the probe and the mean difference point almost the same way — as they do for this
# small model on templated sentiment, where the classes are far apart — steering along
# either gives the same result. The toy world above is the warning for the general case:
# the more the model's features overlap, the further the best reader drifts from the best
# writer, and the more a probe-based intervention moves things it should not.

# %% [markdown]
# ## What you measured

# %%
record("01_steering", actadd_layer=ACTADD_LAYER, actadd_gain_by_coeff=gain[best], actadd_kl_by_coeff=cost[best],
       actadd_heldout_gain=actadd_gain.value, actadd_random_p95=float(np.percentile(random_gain, 95)),
       caa_steerability=summary, caa_two_point=two_point, random_p95=random_p95,
       caa_minus_shuffled={n: d.value for n, d in vs_shuffled.items()}, anti_steerable_fraction=anti_steerable,
       prompting_shift=prompting, reliability=reliability, spearman_cosine=rho_cos, spearman_separation=rho_sep,
       spearman_p={key: t.p_value for key, t in rank_tests.items()}, toy_off_target=off_target,
       sentiment_probe_vs_caa_slope=[probe_slope, caa_slope])

# %% [markdown]
# ## Conclusions
# - Steering works where the claims say so: on held-out prompts the activation-addition vector
#   (its layer chosen on other prompts) beats random vectors of the same norm; on four of the
#   five datasets the CAA vector steers more than 95% of equal-norm random vectors and more
#   than a vector from shuffled labels. On the fifth (agreement) it does not reliably beat
#   either: the printed numbers, not a claim.
# - It costs: the KL from the unsteered model on unrelated text rises with every step of the
#   coefficient, while the effect stops growing (the printed peak).
# - It is uneven per example: the printed range of per-prompt steerability. The
#   anti-steerable share that Tan et al. report on 7B models is printed above; at this scale, on
#   these templated datasets, read it before believing that some prompts move the wrong way.
# - Reading and writing are different directions once features overlap (the toy claims).
#
# ## Going further
# - Full scale on a GPU: `GLASSBOX_SCALE=full` sweeps every second layer and more
#   coefficients; set `MODEL_NAME = "Qwen/Qwen2.5-1.5B-Instruct"` (parameters cell) to repeat
#   everything on a larger instruct model. Layer numbers are the one thing to adapt
#   (`CAA_LAYER` ≈ a third of the depth).
# - Add your own dataset to `utils/contrast_pairs.py` (one line) and see where it lands on the
#   reliability plot.
# - Brumley et al. (arXiv 2411.07213) compare steering with in-context learning on the same
#   tasks; our prompting baseline is the smallest version of that comparison.

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
# **The question.** Can we change what a model does by adding one vector to its residual
# stream — and when it seems to work, is it steering a *behaviour*, or only pushing up the
# logits of the words we built the vector from?
#
# **What you will learn**
# - build steering vectors two ways: activation addition from one prompt pair, and the mean
#   difference over many contrast pairs;
# - choose the layer and the size of the push on validation prompts, at equal *relative* push
#   across layers, and pay attention to the cost (KL divergence on unrelated text);
# - score a behaviour on **words and templates the vector never saw**, so that token identity
#   cannot pass for steering;
# - beat the controls that would expose an artefact: equal-norm random vectors (a distribution,
#   not one draw), a shuffled-label vector, the **unembedding direction** of the construction
#   words (pure token priming), and a prompt that asks for the behaviour;
# - measure unreliability: per-prompt steerability, the anti-steerable fraction with its
#   interval, and what predicts steerability;
# - see why the direction that best *reads* a feature is not the one that best *writes* it.
#
# **Papers**: Turner et al. 2023, "Steering Language Models With Activation Engineering"
# (arXiv 2308.10248); Rimsky/Panickssery et al. 2023, "Steering Llama 2 via Contrastive
# Activation Addition" (arXiv 2312.06681); Tan et al. 2024, "Analysing the Generalisation and
# Reliability of Steering Vectors" (arXiv 2407.12404); Braun et al. 2025, "Understanding
# (Un)Reliability of Steering Vectors in Language Models" (arXiv 2505.22637); Im & Li 2025,
# "A Unified Understanding and Evaluation of Steering Methods" (arXiv 2502.02716).
#
# **Time**: about 90 minutes. **Runs on**: CPU (fast scale, a few minutes) or GPU (full
# scale: more layers and pushes, more random draws, a hub chat model through the same code).

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
import dataclasses

import matplotlib.pyplot as plt
import numpy as np
import scipy.stats
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from tqdm.auto import tqdm

from utils import activations as act
from utils import stats
from utils.behaviours import BEHAVIOURS, split_templates
from utils.checks.steering import (check_anti_steerable_fraction, check_choose_setting, check_equal_norm_random,
                                   check_pair_differences, check_steerability_slopes)
from utils.controls import require_disjoint, require_equal_norm
from utils.models import load_lm
from utils.plotting import slider_or_static
from utils.report import claim, record

# %% tags=["parameters"]
MODEL_NAME = None                                 # None = the embedded SmolLM2-135M-Instruct
LAYER_FRACTIONS = scale(fast=[0.2, 0.35, 0.5, 0.65, 0.8], full=[i / 20 for i in range(2, 18)])   # of the depth
PUSHES = scale(fast=[0.125, 0.25, 0.5], full=[0.0625, 0.125, 0.25, 0.5, 0.75])   # × the layer's typical resid norm
ACTADD_PUSHES = scale(fast=[1.0, 2.0, 4.0, 8.0], full=[0.5, 1.0, 2.0, 4.0, 8.0, 16.0])   # one-pair vector (§1)
KL_BUDGET = 1.0                                   # nats on neutral text: the most a chosen setting may cost
MULTIPLIERS = [-1.0, -0.5, 0.0, 0.5, 1.0]         # × the chosen push, for per-prompt steerability
N_RANDOM = scale(fast=20, full=100, smoke=3)      # equal-norm random vectors per control (vs their 95th percentile)
TEMPLATE_SPLIT = (0.5, 0.25, 0.25)                # templates: build the vector / choose layer+push / report
ACTADD_PAIR = ("I love", "I hate")                # after Turner et al.'s Love − Hate (same token count)
MAX_TOKENS = 3072                                 # token positions per steered forward pass (memory vs speed)
N_SUBJECTS = scale(fast=None, full=None, smoke=2)  # subjects per behaviour's template (None: all)

# %%
model = load_lm(MODEL_NAME)
tokenizer = model.tokenizer
generator = torch.Generator().manual_seed(SETUP.seed)
LAYERS = sorted({act.layer_at(model, f) for f in LAYER_FRACTIONS})
d_model = model.cfg.d_model
print(f"{act.n_layers(model)} layers; sweeping resid_pre layers {LAYERS}")
behaviours = {n: b if N_SUBJECTS is None else dataclasses.replace(b, subjects=b.subjects[:N_SUBJECTS])
              for n, b in BEHAVIOURS.items()}             # fewer prompts per template only in a smoke run


def token_ids(words):
    """The first token of each word (a single token for every course word on the embedded model)."""
    return torch.tensor([tokenizer(w, add_special_tokens=False).input_ids[0] for w in words])


def prompt_tokens(prompts):
    """Right-padded tokens ``[batch, pos]`` (the model's BOS first) and each prompt's length."""
    return act.pad_right([model.to_tokens(p)[0].cpu() for p in prompts], tokenizer.pad_token_id or 0)


def steered_logprobs(prompts, layer, deltas):
    """:func:`steered_logprobs_of_tokens` for prompt strings (the model's BOS first)."""
    return steered_logprobs_of_tokens(*prompt_tokens(prompts), layer, deltas)


def steered_logprobs_of_tokens(tokens, lengths, layer, deltas):
    """Next-token log-probs at each row's last real token with each delta added at ``layer``.

    ``deltas``: ``[n_deltas, d_model]`` (added at every position but 0, the attention sink) or
    ``[n_deltas, pos, d_model]`` (added position by position from position 0: activation
    addition). The layers below ``layer`` are run once; each steered pass starts at ``layer``
    (``act.logits_from``).
    ``tokens``: right-padded ``[batch, pos]``. Returns ``[n_deltas, batch, vocab]``.
    """
    resid = act.resid_batch(model, tokens, [layer], lengths)[layer]                    # [batch, pos, d_model]
    out = []
    with torch.no_grad():
        for chunk in deltas.split(max(1, MAX_TOKENS // tokens.numel())):     # long prompts: fewer deltas a pass
            if chunk.dim() == 2:
                push = chunk[:, None, None, :].expand(-1, 1, resid.shape[1], -1).clone()  # [chunk, 1, pos, d]
                push[:, :, 0] = 0.0                                                  # position 0 left alone
            else:
                n = min(chunk.shape[1], resid.shape[1])
                push = torch.zeros(len(chunk), 1, *resid.shape[1:])
                push[:, 0, :n] = chunk[:, :n]
            x = (resid[None] + push.to(resid)).flatten(0, 1)                          # [chunk * batch, pos, d]
            last = act.logits_from(model, x, layer, lengths.repeat(len(chunk)))
            out.append(last.float().log_softmax(-1).cpu())
    return torch.cat(out).view(len(deltas), len(tokens), -1)


def lexicon_score(logprobs, towards, away):
    """The behaviour score: ``log P(any towards word) − log P(any away word)`` at the next token."""
    return logprobs[..., token_ids(towards)].logsumexp(-1) - logprobs[..., token_ids(away)].logsumexp(-1)


def lexicon_shift(prompts, layer, deltas, towards, away):
    """Change of the lexicon score per delta ``[n_deltas, n_prompts]``, and the KL at the scored token.

    The unsteered pass (a zero delta) shares the forward pass of the lower layers with the steered ones.
    """
    logprobs = steered_logprobs(prompts, layer, torch.cat([torch.zeros_like(deltas[:1]), deltas]))
    scores = lexicon_score(logprobs, towards, away)
    kl = (logprobs[:1].exp() * (logprobs[:1] - logprobs[1:])).sum(-1)                  # [n_deltas, n_prompts]
    return scores[1:] - scores[:1], kl


# The cost of a push: KL(clean ‖ steered) of the next-token distributions over a neutral paragraph.
NEUTRAL_TEXT = ("The train leaves the station at nine in the morning and reaches the coast a little after noon. "
                "Passengers can buy tickets at the counter or from the machines near the main entrance. "
                "On weekdays the first service starts early, and the timetable changes twice a year.")
neutral_tokens = model.to_tokens(NEUTRAL_TEXT)
with torch.no_grad():
    clean_neutral = model(neutral_tokens)[0, 1:]                                      # [pos - 1, vocab]
neutral_resid = act.resid_of_texts(model, [NEUTRAL_TEXT], LAYERS, at="all")
typical_norm = {layer: neutral_resid[layer].norm(dim=-1).median().item() for layer in LAYERS}
print("typical residual norm by layer (median over neutral tokens, position 0 left out):",
      {layer: round(v, 1) for layer, v in typical_norm.items()})


def neutral_cost(layer, deltas):
    """KL(clean ‖ steered) on the neutral text, one value per delta (``[n, d_model]`` or ``[n, pos, d_model]``)."""
    costs = []
    with torch.no_grad():
        for delta in deltas:
            with act.steer(model, layer, delta, skip_first=delta.dim() == 1):
                steered = model(neutral_tokens)[0, 1:]
            costs.append(act.kl_from_clean(clean_neutral, steered).item())
    return np.array(costs)

# %% [markdown]
# Why a *relative* push? The residual stream grows with depth (printed above): the same vector
# is a nudge at a late layer and a shove at an early one. So we never compare layers at "the
# same coefficient"; a push of 0.25 means a vector whose norm is a quarter of the typical
# residual norm *at that layer*.
#
# ## 1. Activation addition: one prompt pair
#
# Turner et al. run two short prompts that differ in a concept — "Love" and "Hate" — and
# subtract their residual streams **position by position** at one layer. During generation
# the difference is added to the first positions of a new prompt. Their first example: the
# model's continuation turns towards the concept.
#
# We measure the effect as the lexicon score of sentiment: how much more probable the next
# token is to be one of the sentiment behaviour's *towards* words (excellent, amazing, ...)
# than one of its *away* words (poor, dreadful, ...). Neither list shares a token with the pair,
# "I love" and "I hate" (this tokenizer splits "Hate" in two, so the pair needs a shared "I").
#
# Two exercises come first, because everything below depends on them: the control, and a
# choice that is not judged on the data that made it.
#
# ### Exercise 1 — random vectors of equal norm
# Difficulty 🔴⚪⚪ · Importance 🔵🔵🔵 · ~10 min
#
# The first control of any steering vector: does *any* push of the same size do as much? One
# random vector can be lucky, so we draw many and compare with the 95th percentile of their
# effects. Random *directions* must be uniform on the sphere (every direction equally likely),
# and each must have exactly the steering vector's norm.

# %%
def equal_norm_random(vector: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` random directions, uniform on the sphere, each with ``vector``'s norm. Returns ``[n, d_model]``."""
    # BEGIN SOLUTION hint: a standard normal vector, divided by its own norm, is uniform on the sphere
    draws = torch.randn(n, vector.shape[-1], generator=generator)
    return draws / draws.norm(dim=-1, keepdim=True) * vector.norm()
    # END SOLUTION


check_equal_norm_random(equal_norm_random)

# %% [markdown]
# ### Exercise 2 — choose on validation, within a budget
# Difficulty 🔴⚪⚪ · Importance 🔵🔵🔵 · ~10 min
#
# A sweep gives, for each setting (layer, push), an effect measured on **validation** prompts
# and a cost (KL on neutral text). Pick the setting with the largest effect among those that
# cost at most `kl_budget`, and return it as a `stats.Choice` that remembers the units it was
# chosen on — the notebook then checks that none of them is used to report the result.

# %%
def choose_setting(effect: dict, cost: dict, kl_budget: float, chosen_on) -> stats.Choice:
    """The setting with the largest validation ``effect`` among those with ``cost <= kl_budget``.

    ``effect``, ``cost``: ``{setting: float}`` with the same keys; ``chosen_on``: the validation units.
    Raises ``ValueError`` when no setting is within the budget.
    """
    # BEGIN SOLUTION hint: filter the settings by cost, then stats.choose(scores, chosen_on=...)
    affordable = {setting: value for setting, value in effect.items() if cost[setting] <= kl_budget}
    if not affordable:
        raise ValueError(f"no setting costs at most {kl_budget} nats; cheapest: {min(cost.values()):.2f}")
    return stats.choose(affordable, chosen_on=chosen_on)
    # END SOLUTION


check_choose_setting(choose_setting)

# %% [markdown]
# The pair, aligned by position (both prompts must have the same number of tokens), and the
# neutral prompts it will be added to, split into a half that **selects** the layer and push
# and a half that **evaluates** them.

# %%
NEUTRAL_PROMPTS = ["Yesterday I went to the", "My neighbour told me that the", "In the morning we usually",
                   "The report on the new road says", "When the bus finally arrived, I", "I think that my new job is",
                   "After lunch, the children", "The letter from the council was", "On the way home we saw a",
                   "The meeting next week will", "Our teacher said that the", "Last summer my family and I",
                   "The shop on the corner has", "At the station there was a", "This afternoon I want to",
                   "The weather forecast for Sunday is", "My grandmother always says that", "The new film at the",
                   "Before the exam, the students", "The old man on the bench"]
prompt_split = stats.split_units(np.arange(len(NEUTRAL_PROMPTS)), fractions=(0.0, 0.5, 0.5), seed=SETUP.seed)
SELECT, EVALUATE = prompt_split.val, prompt_split.test                     # indices into NEUTRAL_PROMPTS
require_disjoint(SELECT, EVALUATE, what="selection and evaluation prompts")
sentiment = behaviours["sentiment"]
pair_tokens, _ = prompt_tokens(list(ACTADD_PAIR))
assert pair_tokens.shape[1] == len(model.to_tokens(ACTADD_PAIR[0])[0]) == len(model.to_tokens(ACTADD_PAIR[1])[0]), \
    "activation addition needs a pair with the same number of tokens"
require_disjoint(pair_tokens.flatten().tolist(), token_ids(sentiment.towards + sentiment.away).tolist(),
                 what="the pair's tokens and the scored words")
pair_resid = act.resid_batch(model, pair_tokens, LAYERS)
pair_diff = {layer: (pair_resid[layer][0] - pair_resid[layer][1]).float().cpu() for layer in LAYERS}  # [pos, d]
print("row norms of the difference at the first sweep layer (position 0 is the shared BOS):",
      pair_diff[LAYERS[0]].norm(dim=-1).round(decimals=1).tolist())


def actadd_delta(layer, push):
    """The pair difference rescaled so its largest row is ``push`` × the typical residual norm at ``layer``."""
    diff = pair_diff[layer]
    return diff / diff.norm(dim=-1).max() * push * typical_norm[layer]


def sentiment_shift(prompts, layer, deltas):
    """Change of the sentiment lexicon score per delta: ``[n_deltas, n_prompts]``."""
    return lexicon_shift(prompts, layer, deltas, sentiment.towards, sentiment.away)[0]


select_prompts = [NEUTRAL_PROMPTS[i] for i in SELECT]
actadd_effect, actadd_cost = {}, {}
for layer in tqdm(LAYERS, desc="activation addition: layers"):
    deltas = torch.stack([actadd_delta(layer, p) for p in ACTADD_PUSHES])
    shifts = sentiment_shift(select_prompts, layer, deltas).mean(1)
    costs = neutral_cost(layer, deltas)
    for push, shift, kl in zip(ACTADD_PUSHES, shifts.tolist(), costs):
        actadd_effect[layer, push], actadd_cost[layer, push] = shift, kl
actadd_choice = choose_setting(actadd_effect, actadd_cost, KL_BUDGET, chosen_on=SELECT)
require_disjoint(actadd_choice, EVALUATE, what="selection and evaluation prompts")
ACTADD_LAYER, ACTADD_PUSH = actadd_choice.option

fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
for push in ACTADD_PUSHES:
    axes[0].plot(LAYERS, [actadd_effect[layer, push] for layer in LAYERS], "o-", label=f"push {push}")
    axes[1].plot(LAYERS, [actadd_cost[layer, push] for layer in LAYERS], "o-", label=f"push {push}")
axes[0].set(xlabel="layer", ylabel="shift of the sentiment score", title="effect (selection prompts)")
axes[1].set(xlabel="layer", ylabel="KL on neutral text (nats)", title="cost", yscale="log")
axes[1].axhline(KL_BUDGET, color="grey", ls="--", lw=0.8)
axes[0].legend()
plt.tight_layout()
plt.show()
print(f"chosen on {len(SELECT)} selection prompts: layer {ACTADD_LAYER}, push {ACTADD_PUSH} "
      f"(shift {actadd_choice.score:+.2f}, KL {actadd_cost[actadd_choice.option]:.2f} nats)")

# %% [markdown]
# Now the evaluation prompts, against random position-aligned differences: each row of a
# random control has the norm of the same row of the real difference.

# %%
evaluate_prompts = [NEUTRAL_PROMPTS[i] for i in EVALUATE]
delta = actadd_delta(ACTADD_LAYER, ACTADD_PUSH)                                         # [pos, d_model]
random_rows = torch.stack([equal_norm_random(row, N_RANDOM, generator) for row in delta], dim=1)  # [draw, pos, d]
for row in range(len(delta)):
    require_equal_norm(random_rows[:, row], delta[row], what="random activation-addition rows")
shifts = sentiment_shift(evaluate_prompts, ACTADD_LAYER, torch.cat([delta[None], random_rows])).numpy()
actadd_shift, random_actadd = shifts[0], shifts[1:].mean(1)                             # per prompt; per draw
actadd_p95 = float(np.percentile(np.abs(random_actadd), 95))
print(f"held-out shift {actadd_shift.mean():+.2f} (prompts from {actadd_shift.min():+.2f} to "
      f"{actadd_shift.max():+.2f});"
      f" {N_RANDOM} random differences: median {np.median(random_actadd):+.2f}, 95th percentile of |shift| "
      f"{actadd_p95:.2f}")
actadd_ci = stats.bootstrap_ci(actadd_shift)
verdict = "beats" if actadd_ci[0] > actadd_p95 else "does not reliably beat"
print(f"95% CI of the held-out shift {actadd_ci[0]:+.2f} to {actadd_ci[1]:+.2f}: one pair {verdict} random pairs")

# %% [markdown]
# Read the verdict with its interval. On this model a one-pair difference that differs at a
# single position ("love" vs "hate") is a weak push for held-out sentiment words: its held-out
# shift is about the size of the random pushes' 95th percentile, so the chapter makes no
# claim here — the pair is too small a sample of the concept. That is the reason to average
# many pairs, which is the next section.

# %% [markdown]
# And what it does to generated text (greedy decoding; the difference sits on the first
# positions of the prompt, as in the paper):

# %%
def greedy(prompt, n=16, layer=None, delta=None):
    """Greedy continuation; with ``delta``, the residual stream at ``layer`` is edited in every forward pass."""
    tokens = model.to_tokens(prompt)
    for _ in range(n):
        with torch.no_grad():
            if delta is None:
                logits = model(tokens)
            else:
                with act.steer(model, layer, delta, skip_first=delta.dim() == 1):
                    logits = model(tokens)
        tokens = torch.cat([tokens, logits[:, -1:].argmax(-1).to(tokens)], dim=1)
    return model.to_string(tokens[0, 1:])


for prompt in evaluate_prompts[:2]:
    print(f"  unsteered: {greedy(prompt)!r}")
    print(f"  love−hate: {greedy(prompt, layer=ACTADD_LAYER, delta=delta)!r}\n")

# %% [markdown]
# ## 2. Mean difference over many pairs — scored on words it never saw
#
# One pair is noisy. Contrastive activation addition averages over many pairs that share a
# prompt and differ only in the completion: the residual stream at the completion token of
# `prompt + " great"` minus that of `prompt + " awful"`.
#
# Here is the trap the chapter is built around. The vector is read at the completion token, so
# it contains the difference of the two words' embeddings — and in this model the embedding
# and unembedding are tied. Scoring the vector by `logit(" great") − logit(" awful")` would
# measure, in part, that the vector *is* " great" − " awful". So each behaviour in
# `utils/behaviours.py` comes with
#
# - **templates** split whole into train (build the vector), validation (choose the layer and
#   push) and test (report);
# - **construction pairs** used only to build the vector;
# - a **scored lexicon** sharing no token with the construction pairs: the score of a prompt
#   is `log P(any towards word) − log P(any away word)` at its next token.
#
# Even so, held-out words of the same meaning have similar embeddings: the **unembedding
# baseline** below asks whether the model's computation adds anything to the words' own
# direction.

# %%
for b in behaviours.values():
    print(f"{b.name:>12}: builds from {b.pairs[0]} …  scores {b.towards[:3]} … vs {b.away[:3]} …  "
          f"e.g. {b.items([0])[0].prompt!r}")

# %% [markdown]
# ### Exercise 3 — the contrast pair differences
# Difficulty 🔴🔴⚪ · Importance 🔵🔵🔵 · ~15 min
#
# For each pair of texts `(towards, away)` — a prompt completed both ways — return the
# residual stream entering `layer` at the **completion token** (the last real token of each
# text) of `towards` minus that of `away`. The steering vector is their mean; the spread of the
# individual differences is what section 3 studies.

# %%
def pair_differences(model, pairs: list[tuple[str, str]], layers: list[int]) -> dict[int, torch.Tensor]:
    """``{layer: [n_pairs, d_model]}``: resid_pre at the last token of ``towards`` minus that of ``away``."""
    # BEGIN SOLUTION hint: act.resid_of_texts(model, texts, layers, at="last") reads each text's last real token
    towards = act.resid_of_texts(model, [t for t, _ in pairs], layers, at="last")
    away = act.resid_of_texts(model, [a for _, a in pairs], layers, at="last")
    return {layer: towards[layer] - away[layer] for layer in layers}
    # END SOLUTION


check_pair_differences(pair_differences, model)

# %% [markdown]
# Build every behaviour's differences on its train templates (and, for section 3, on its
# validation templates), then sweep layer × push on the **validation** templates with the
# held-out lexicon. The construction words and the scored words never overlap, nor do the
# templates of the three splits: the checks below enforce it.

# %%
splits, diffs, val_diffs, vectors = {}, {}, {}, {}
for name, b in tqdm(behaviours.items(), desc="contrast pairs"):
    splits[name] = split_templates(b, TEMPLATE_SPLIT, seed=SETUP.seed)
    s = splits[name]
    require_disjoint(s.train, s.val, what=f"{name}: train and validation templates")
    require_disjoint(s.train, s.test, what=f"{name}: train and test templates")
    require_disjoint(s.val, s.test, what=f"{name}: validation and test templates")
    built_from = set(token_ids(sorted(set().union(*b.construction_words()))).tolist())
    require_disjoint(built_from, token_ids(b.towards + b.away).tolist(), what=f"{name}: construction and scored words")
    diffs[name] = pair_differences(model, b.construction(b.items(s.train)), LAYERS)
    val_diffs[name] = pair_differences(model, b.construction(b.items(s.val)), LAYERS)
    vectors[name] = {layer: d.mean(0) for layer, d in diffs[name].items()}


def unit(v):
    return v / v.norm(dim=-1, keepdim=True)


def behaviour_shift(name, items, layer, deltas):
    """Change of the behaviour's lexicon score per delta ``[n_deltas, n_items]``, and the KL at the scored token."""
    b = behaviours[name]
    return lexicon_shift([it.prompt for it in items], layer, deltas, b.towards, b.away)


val_effect, val_cost, choices = {}, {}, {}
for name, b in tqdm(behaviours.items(), desc="layer × push sweep"):
    val_items = b.items(splits[name].val)
    val_effect[name], val_cost[name] = {}, {}
    for layer in LAYERS:
        deltas = torch.stack([unit(vectors[name][layer]) * p * typical_norm[layer] for p in PUSHES])
        shift, _ = behaviour_shift(name, val_items, layer, deltas)
        for push, value, kl in zip(PUSHES, shift.mean(1).tolist(), neutral_cost(layer, deltas)):
            val_effect[name][layer, push], val_cost[name][layer, push] = value, kl
    val_units = [(name, t) for t in splits[name].val]
    choices[name] = choose_setting(val_effect[name], val_cost[name], KL_BUDGET, chosen_on=val_units)
    require_disjoint(choices[name], [(name, t) for t in splits[name].test], what=f"{name}: choice and test templates")

fig, axes = plt.subplots(1, len(behaviours), figsize=(3.2 * len(behaviours), 3), sharey=True)
for ax, name in zip(axes, behaviours):
    for push in PUSHES:
        ax.plot(LAYERS, [val_effect[name][layer, push] for layer in LAYERS], "o-", label=f"push {push}")
    ax.set(title=name, xlabel="layer")
axes[0].set(ylabel="validation shift of the score")
axes[0].legend()
plt.tight_layout()
plt.show()
for name, c in choices.items():
    layer, push = c.option
    print(f"{name:>12}: layer {layer}, push {push} chosen on validation templates "
          f"(shift {c.score:+.2f}, KL on neutral text {val_cost[name][c.option]:.2f} nats)")

# %% [markdown]
# ### The test templates, against every baseline
#
# At the chosen setting, on test templates (never used to build or choose), each behaviour's
# vector meets four competitors, all pushed with the same norm at the same layer:
#
# - **random**: `N_RANDOM` equal-norm random directions; the vector must beat the 95th
#   percentile of their |mean shift|;
# - **shuffled labels**: the mean of the same pair differences with the sign of a random half
#   flipped — the same activations, the labels turned to noise (a fully random sign flip
#   would mostly give back ± the vector itself when the pairs agree);
# - **unembedding**: the mean unembedding column of the construction words' *towards* side
#   minus that of their *away* side. If the vector does no better than this, it is token
#   priming: the model's computation adds nothing to the words' own directions;
# - **prompting** comes after, at matched cost.

# %%
W_U = model.unembed.W_U.detach().float().cpu()                                          # [d_model, vocab]


def unembedding_direction(b):
    towards, away = b.construction_words()
    return W_U[:, token_ids(sorted(towards))].mean(1) - W_U[:, token_ids(sorted(away))].mean(1)


def shuffled_label_vector(d):
    """The mean of the differences with the sign of a random half flipped: ``[d_model]``."""
    signs = torch.ones(len(d))
    signs[torch.randperm(len(d), generator=generator)[: len(d) // 2]] = -1.0
    assert abs(signs.sum()) <= 1, "half the signs must be flipped: otherwise the vector comes back"
    return (signs[:, None] * d).mean(0)


test_shift, baselines, random_p95 = {}, {}, {}
for name, b in tqdm(behaviours.items(), desc="test templates"):
    layer, push = choices[name].option
    size = push * typical_norm[layer]
    v = unit(vectors[name][layer]) * size
    controls = {"unembedding": unit(unembedding_direction(b)) * size,
                "shuffled labels": unit(shuffled_label_vector(diffs[name][layer])) * size}
    randoms = equal_norm_random(v, N_RANDOM, generator)
    require_equal_norm(torch.stack([*controls.values(), *randoms]), v, what=f"{name}: control vectors")
    shift, _ = behaviour_shift(name, b.items(splits[name].test), layer, torch.stack([v, *controls.values(), *randoms]))
    shift = shift.numpy()
    test_shift[name] = shift[0]
    baselines[name] = dict(zip(controls, shift[1: 1 + len(controls)]))
    random_p95[name] = float(np.percentile(np.abs(shift[1 + len(controls):].mean(1)), 95))

vs = {name: {kind: stats.paired_bootstrap(test_shift[name], base) for kind, base in baselines[name].items()}
      for name in behaviours}
for name in behaviours:
    print(f"{name:>12}: mean difference {test_shift[name].mean():+.2f} | random p95 {random_p95[name]:.2f} | "
          + " | ".join(f"{kind} {baselines[name][kind].mean():+.2f} (difference {d.value:+.2f}, "
                       f"95% CI {d.ci[0]:+.2f} to {d.ci[1]:+.2f})" for kind, d in vs[name].items()))

fig, ax = plt.subplots(figsize=(10, 3.5))
width = 0.2
for k, (label, values) in enumerate({"mean difference": [test_shift[n].mean() for n in behaviours],
                                     "unembedding": [baselines[n]["unembedding"].mean() for n in behaviours],
                                     "shuffled labels": [baselines[n]["shuffled labels"].mean() for n in behaviours],
                                     "random p95 |shift|": [random_p95[n] for n in behaviours]}.items()):
    ax.bar(np.arange(len(behaviours)) + (k - 1.5) * width, values, width, label=label)
ax.set_xticks(np.arange(len(behaviours)), list(behaviours))
ax.axhline(0, color="grey", lw=0.5)
ax.set(ylabel="shift of the held-out lexicon score", title="test templates, equal norm, chosen layer")
ax.legend()
plt.show()

# %%
beats_random = {name: stats.bootstrap_ci(test_shift[name])[0] > random_p95[name] for name in behaviours}
print("lower end of the 95% CI above the random 95th percentile:", beats_random)
claim("behaviours_beating_random", sum(beats_random.values()), ">=", len(behaviours) / 2,
      why="on at least half the behaviours, the vector steers held-out words on held-out templates more than 95% "
          "of equal-norm random vectors (the whole interval above)")
beats_shuffled = {name: vs[name]["shuffled labels"].ci[0] > 0 for name in behaviours}
print("lower end of the 95% CI of (vector − shuffled labels) above 0:", beats_shuffled)
claim("behaviours_beating_shuffled", sum(beats_shuffled.values()), ">=", len(behaviours) / 2,
      why="on at least half the behaviours the labels matter: the shuffled-label vector steers less (whole interval)")
# Which side of the unembedding baseline each behaviour lands on varies with the seed's split of
# templates, so the claims count behaviours; the per-behaviour verdicts are printed.
verdicts = {name: "vector better" if vs[name]["unembedding"].ci[0] > 0 else
            "unembedding better" if vs[name]["unembedding"].ci[1] < 0 else "no difference"
            for name in behaviours}
print("mean difference vs the unembedding baseline (95% CI of the difference):", verdicts)
claim("priming_explains_most", sum(v != "vector better" for v in verdicts.values()), ">=", len(behaviours) / 2,
      why="on most behaviours the construction words' own unembedding steers as well as the vector, or better")
wins = sum(v == "vector better" for v in verdicts.values())
print(f"the vector beats the unembedding on {wins} of {len(behaviours)} behaviours "
      "(not claimed: which one changes with the seed, and with five tests one can be luck)")

# %% [markdown]
# Read the table before the claims. Most behaviours beat their random vectors, on words and
# templates the vector never saw (the printed dictionary says which: a behaviour whose
# interval reaches into the random distribution has not shown it steers). But look at the unembedding
# column. Where it steers as much as the mean difference — or more — the honest reading is
# that the "behaviour" vector works by pushing up the words of the same meaning, which share
# the construction words' output direction: **token priming**. On most behaviours that is
# what happens here (the claim), and where the model's own difference does beat the words'
# directions, it is a different behaviour for each seed's split of templates: at 135M
# parameters this experiment does not show steering beyond priming.
#
# ### A prompting baseline, at the same cost
#
# Steering is worth its price only if it does something prompting cannot. We compare the two
# at **matched cost**: the KL divergence each causes at the scored token of the test prompts.
# Steering's effect is read off its dose–response curve at the KL the instruction causes.

# %%
INSTRUCTIONS = {"sentiment": "Describe things warmly and positively. ", "temperature": "It is a heatwave. ",
                "size": "Everything here is gigantic. ", "french": "Écrivez en français. ",
                "sport": "We only ever talk about sport. "}
DOSES = sorted({m for m in MULTIPLIERS if m != 0} | {1.5, 2.0})                            # × the chosen push
prompting, dose_shift = {}, {}
for name, b in tqdm(behaviours.items(), desc="prompting"):
    items = b.items(splits[name].test)
    plain = steered_logprobs([it.prompt for it in items], 0, torch.zeros(1, d_model))[0]
    told = steered_logprobs([INSTRUCTIONS[name] + it.prompt for it in items], 0, torch.zeros(1, d_model))[0]
    effect = (lexicon_score(told, b.towards, b.away) - lexicon_score(plain, b.towards, b.away)).mean().item()
    kl = (plain.exp() * (plain - told)).sum(-1).mean().item()
    layer, push = choices[name].option
    doses = torch.stack([unit(vectors[name][layer]) * push * typical_norm[layer] * k for k in DOSES])
    dose_shift[name], dose_kl = behaviour_shift(name, items, layer, doses)             # kept for section 3
    positive = [i for i, k in enumerate(DOSES) if k > 0]
    matched = float(np.interp(kl, dose_kl[positive].mean(1).numpy(), dose_shift[name][positive].mean(1).numpy()))
    prompting[name] = {"prompt_shift": effect, "prompt_kl": kl, "steer_shift_at_matched_kl": matched,
                       "steer_kl_range": [float(dose_kl[positive].mean(1).min()),
                                          float(dose_kl[positive].mean(1).max())]}
    print(f"{name:>12}: instruction shift {effect:+.2f} at KL {kl:.2f} nats; steering at the same KL {matched:+.2f}"
          f" (steering KL over the doses: {prompting[name]['steer_kl_range'][0]:.2f}–"
          f"{prompting[name]['steer_kl_range'][1]:.2f})")

# %% [markdown]
# Where the instruction's KL lies outside the range of the steering doses, the matched number
# is the end of the curve (`np.interp` does not extrapolate): read the printed range. The
# comparison per unit of disruption is the fair one; comparing at "multiplier 1" would
# favour whichever intervention happened to be scaled larger.
#
# ### What the steered model writes
#
# A free-text check, on two test prompts of a behaviour where the vector beat the unembedding:

# %%
show = next((n for n, v in verdicts.items() if v == "vector better"), "sentiment")
layer, push = choices[show].option
steer_vector = unit(vectors[show][layer]) * push * typical_norm[layer]
for it in behaviours[show].items(splits[show].test)[:: len(behaviours[show].subjects)][:2]:
    print(f"unsteered: {greedy(it.prompt)!r}")
    print(f"  steered: {greedy(it.prompt, layer=layer, delta=steer_vector)!r}\n")

# %% [markdown]
# Try it yourself: the slider sets the multiple of the chosen push (without widgets, two fixed
# values are shown).

# %%
slider_prompt = behaviours[show].items(splits[show].test)[0].prompt
slider_or_static(lambda multiple: print(f"{multiple:>4}: "
                                        f"{greedy(slider_prompt, layer=layer, delta=steer_vector * multiple)!r}"),
                 values=[0.0, 0.5, 1.0, 1.5, 2.0, 3.0], description="multiple", static=[1.0, 3.0])

# %% [markdown]
# ### The CAA format: A/B answers (a negative result at this scale)
#
# Rimsky/Panickssery et al. remove the token confound differently: the model answers a
# multiple-choice question with a **letter**, and the behaviour's option is (A) for half the
# items and (B) for the rest, so the letter's identity cancels in the mean difference. The
# vector is read at the answer letter. The prompt goes through the tokenizer's own chat
# template, so the same cell runs on any chat model.

# %%
AB_QUESTIONS = ["How was {}?", "What did you think of {}?", "Tell me about {}.", "Describe {} in one word.",
                "Give me your honest opinion of {}.", "How would you rate {}?", "Sum up {} for me.",
                "What was {} like?"]
ab_split = stats.split_units(np.arange(len(AB_QUESTIONS)), fractions=(0.75, 0.0, 0.25), seed=SETUP.seed)
require_disjoint(ab_split.train, ab_split.test, what="A/B train and test questions")


def ab_items(questions, words):
    """Chat-formatted A/B prompts ending where the answer letter goes, and each prompt's behaviour letter."""
    items = []
    for q in questions:
        for k, subject in enumerate(sentiment.subjects):
            good, bad = words[k % len(words)]
            first = "A" if (q + k) % 2 == 0 else "B"                       # the behaviour's letter, balanced
            options = (good, bad) if first == "A" else (bad, good)
            user = (AB_QUESTIONS[q].format(subject) + f"\n(A) It was{options[0]}.\n(B) It was{options[1]}."
                    "\nAnswer with A or B.")
            chat = tokenizer.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                                 add_generation_prompt=True)
            items.append((chat + "Answer:", first))
    return items


def chat_ids(text):
    """Token ids of a chat-formatted text, which carries its own special tokens (no second BOS)."""
    return torch.tensor(tokenizer(text, add_special_tokens=False).input_ids)


letters = {"A": token_ids([" A"])[0], "B": token_ids([" B"])[0]}
ab_train = ab_items(ab_split.train, sentiment.pairs)
ab_test = ab_items(ab_split.test, list(zip(sentiment.towards, sentiment.away)))
ab_layer, ab_push = choices["sentiment"].option
other = {"A": " B", "B": " A"}
with_letters = [(p + f" {first}", p + other[first]) for p, first in ab_train]
ab_read = {side: act.resid(model, [chat_ids(pair[k]) for pair in with_letters], [ab_layer], at="last")[ab_layer]
           for k, side in enumerate(("towards", "away"))}                           # at the answer letter
ab_vector = (ab_read["towards"] - ab_read["away"]).mean(0)
ab_delta = unit(ab_vector) * ab_push * typical_norm[ab_layer]
ab_vectors = torch.cat([torch.zeros(1, d_model), ab_delta[None], equal_norm_random(ab_delta, N_RANDOM, generator)])
logprobs = steered_logprobs_of_tokens(*act.pad_right([chat_ids(p) for p, _ in ab_test], tokenizer.pad_token_id or 0),
                                      ab_layer, ab_vectors)                            # [vector, item, vocab]
sign = torch.tensor([1.0 if first == "A" else -1.0 for _, first in ab_test])
letter_diff = (sign * (logprobs[..., letters["A"]] - logprobs[..., letters["B"]])).numpy()  # behaviour letter − other
ab_shift = letter_diff[1] - letter_diff[0]
ab_random = (letter_diff[2:] - letter_diff[0]).mean(1)
ab_result = {"unsteered_preference": float(letter_diff[0].mean()), "shift": float(ab_shift.mean()),
             "random_p95": float(np.percentile(np.abs(ab_random), 95))}
print(f"A/B format at layer {ab_layer}, push {ab_push}: unsteered preference for the behaviour's letter "
      f"{ab_result['unsteered_preference']:+.2f} logits; steering shift {ab_result['shift']:+.2f} "
      f"vs 95th percentile of |{N_RANDOM} random| {ab_result['random_p95']:.2f}")

# %% [markdown]
# On the embedded model, read the two printed numbers: a preference near zero means the model
# does not answer these questions by sentiment at all, and a shift inside the random
# distribution means the A/B vector does not steer. At 135M parameters, a multiple-choice
# format is beyond the model; this is a measured negative result, not a claim. The same cell
# on a chat model of a few billion parameters (`MODEL_NAME` in the parameters cell, on a GPU)
# is the CAA paper's setting, where the format is known to work.

# %% [markdown]
# ## 3. Unreliability, measured
#
# A vector that moves the *average* is not a vector that moves every prompt. Tan et al.
# measure each prompt's **steerability**: the slope of its behaviour score against the
# steering multiplier. On 7B models they find a wide spread, and a sizeable fraction of
# **anti-steerable** prompts, whose score moves the wrong way.
#
# ### Exercise 4 — per-prompt steerability
# Difficulty 🔴🔴⚪ · Importance 🔵🔵🔵 · ~10 min
#
# Fit a straight line to score against multiplier for each prompt — with an intercept, since
# the unsteered score is not zero — and return the slopes.

# %%
def steerability_slopes(multipliers: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """Least-squares slope of score against multiplier, per example.

    multipliers: ``[n_mult]``; scores: ``[n_mult, n_examples]``. Returns ``[n_examples]``.
    """
    # BEGIN SOLUTION hint: slope = cov(m, s) / var(m); centre both before multiplying
    m = multipliers.to(scores.dtype) - multipliers.to(scores.dtype).mean()
    s = scores - scores.mean(0, keepdim=True)
    return (m[:, None] * s).sum(0) / (m ** 2).sum()
    # END SOLUTION


check_steerability_slopes(steerability_slopes)

# %% [markdown]
# ### Exercise 5 — the anti-steerable fraction, with an honest interval
# Difficulty 🔴🔴⚪ · Importance 🔵🔵🔵 · ~10 min
#
# Return the fraction of prompts with a negative slope and its exact 95% (Clopper–Pearson)
# interval. Why not the bootstrap? If no prompt is anti-steerable, every bootstrap resample
# has none either and the bootstrap says [0, 0] — as if 24 prompts could prove a fraction is
# exactly zero. The exact binomial interval says how large the fraction could still be.

# %%
def anti_steerable_fraction(slopes: torch.Tensor) -> tuple[float, tuple[float, float]]:
    """Fraction of slopes below zero, and its exact 95% binomial interval ``(low, high)``."""
    # BEGIN SOLUTION hint: scipy.stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    k, n = int((slopes < 0).sum()), len(slopes)
    interval = scipy.stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    return k / n, (float(interval.low), float(interval.high))
    # END SOLUTION


check_anti_steerable_fraction(anti_steerable_fraction)

# %% [markdown]
# Per-prompt steerability on the test templates, at the chosen layer, with multipliers of the
# chosen push (the doses measured for the prompting comparison; multiplier 0 is the unsteered score).

# %%
steerability, anti = {}, {}
for name in behaviours:
    shift = dose_shift[name]                                     # [dose, test prompt], from the prompting cell
    scores = torch.stack([torch.zeros(shift.shape[1]) if m == 0 else shift[DOSES.index(m)] for m in MULTIPLIERS])
    steerability[name] = steerability_slopes(torch.tensor(MULTIPLIERS), scores).numpy()
    anti[name] = anti_steerable_fraction(torch.as_tensor(steerability[name]))

fig, ax = plt.subplots(figsize=(9, 3.5))
ax.boxplot([steerability[n] for n in behaviours], showfliers=True)
ax.set_xticks(np.arange(1, len(behaviours) + 1), list(behaviours))
ax.axhline(0, color="grey", lw=0.5)
ax.set(ylabel="steerability (score per unit multiplier)", title="per-prompt steerability, test templates")
plt.show()
pooled = np.concatenate([steerability[n] for n in behaviours])
pooled_anti = anti_steerable_fraction(torch.as_tensor(pooled))
means = {n: float(s.mean()) for n, s in steerability.items()}
spread = {n: float(s.std()) for n, s in steerability.items()}
for name in behaviours:
    s, (fraction, (low, high)) = steerability[name], anti[name]
    print(f"{name:>12}: steerability {s.mean():+.2f} ± {s.std():.2f} (from {s.min():+.2f} to {s.max():+.2f}); "
          f"anti-steerable {fraction:.0%} (95% CI {low:.0%}–{high:.0%}) of {len(s)} prompts")
print(f"pooled: anti-steerable {pooled_anti[0]:.1%} (95% CI {pooled_anti[1][0]:.1%}–{pooled_anti[1][1]:.1%}) "
      f"of {len(pooled)} prompts; between-behaviour variance of the mean {np.var(list(means.values())):.2f} "
      f"vs mean within-behaviour variance {np.mean([v ** 2 for v in spread.values()]):.2f}")
for name in behaviours:
    claim(f"steerable_on_average_{name}", steerability[name].mean(), ">", 0.0,
          ci=stats.bootstrap_ci(steerability[name]), why=f"on {name}'s test templates the mean slope is positive")
cv = {n: spread[n] / abs(means[n]) for n in behaviours}
print("within-behaviour spread relative to the mean (coefficient of variation):",
      {n: round(v, 2) for n, v in cv.items()})

# %% [markdown]
# Compare the anti-steerable shares with Tan et al.'s finding. Where a behaviour shows 0%, the
# printed upper end of the interval is what these few prompts can rule out — not that the
# fraction is zero. Where anti-steerable prompts do appear, look at that behaviour's mean
# steerability: they come with the weakest vectors, whose spread (the coefficient of
# variation) is as large as their mean. The unreliability that shows on every behaviour is the
# spread (the boxes) and, above, vectors that are no better than priming their words. A
# bigger chat model at full scale, with more varied prompts, is where the paper's
# anti-steerable tail is measured.
#
# ### What predicts steerability?
#
# Braun et al. look for properties of the training activations that predict how well a
# vector will steer before steering at all: do the individual pair differences point the same
# way (their mean pairwise **cosine**), and how **separated** are they along the vector (the
# mean projection of held-out differences over its standard deviation, d′)? Each behaviour at
# each sweep layer is one point, against its validation steerability at the middle push.
# Points at neighbouring layers are not independent; the permutation p-value treats them as
# if they were, so read it as an upper bound on the evidence.

# %%
predictors = {"cosine": [], "separation": [], "steerability": []}
mid_push = PUSHES[len(PUSHES) // 2]
for name in behaviours:
    for layer in LAYERS:
        d = diffs[name][layer]
        cos = F.cosine_similarity(d[:, None], d[None], dim=-1)
        predictors["cosine"].append(cos[~torch.eye(len(d), dtype=torch.bool)].mean().item())
        proj = val_diffs[name][layer] @ unit(vectors[name][layer])
        predictors["separation"].append((proj.mean() / proj.std()).item())
        predictors["steerability"].append(val_effect[name][layer, mid_push])
rank_tests = {key: stats.permutation_test(predictors[key], predictors["steerability"], kind="spearman",
                                          alternative="greater") for key in ("cosine", "separation")}
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
for ax, key in zip(axes, rank_tests):
    for k, name in enumerate(behaviours):
        rows = slice(k * len(LAYERS), (k + 1) * len(LAYERS))
        ax.scatter(predictors[key][rows], predictors["steerability"][rows], label=name)
    ax.set(xlabel=key, title=f"Spearman ρ {rank_tests[key].value:+.2f} (p {rank_tests[key].p_value:.3f})")
axes[0].set(ylabel="validation shift at the middle push")
axes[0].legend(fontsize=7)
plt.tight_layout()
plt.show()
for key, t in rank_tests.items():
    print(f"{key}: Spearman ρ with steerability {t.value:+.2f}, one-sided permutation p = {t.p_value:.3f} "
          f"over {len(predictors[key])} behaviour-layer points")

# %% [markdown]
# A measurement, not a claim: five behaviours are far too few to test the paper, and the
# points share behaviours. The plot shows what the predictors look like on a small model;
# the full scale adds layers, and more behaviours (one line each in `utils/behaviours.py`)
# are the way to a real test.
#
# ## 4. The direction that reads is not the direction that writes
#
# A linear probe finds a direction whose dot product with the activation *reads out* a
# feature. Steering needs the direction along which the model *represents* the feature. When
# features are not orthogonal these differ.
#
# A toy world: `k` features with values `f`, written into `d` dimensions as `x = D f`, where
# the columns of `D` (the representation vectors) overlap. The exact readout of every feature
# is `f = R x` with `R = pinv(D)`: the rows of `R` are the ideal probes, and `R D = I`.

# %%
d, k = 32, 6
base = torch.randn(d, k, generator=generator)
shared = torch.randn(d, 1, generator=generator)
D = F.normalize(base + 1.2 * shared, dim=0)          # unit representation vectors that overlap
R = torch.linalg.pinv(D)                              # [k, d]: the readout directions
assert torch.allclose(R @ D, torch.eye(k), atol=1e-4)
overlap = (D.T @ D - torch.eye(k)).abs().sum().item() / (k * (k - 1))
print("mean |cos| between representation vectors:", round(overlap, 2))

n_samples = 4000
f = (torch.rand(n_samples, k, generator=generator) < 0.5).float()
x = f @ D.T + 0.05 * torch.randn(n_samples, d, generator=generator)
mean_difference = x[f[:, 0] == 1].mean(0) - x[f[:, 0] == 0].mean(0)
probe = LogisticRegression(C=10.0, max_iter=2000).fit(x.numpy(), f[:, 0].numpy())
w = torch.tensor(probe.coef_[0], dtype=torch.float32)
toy = {"mean difference": mean_difference, "logistic probe": w}
toy_cos = {f"{name} vs {ref}": F.cosine_similarity(vec, col, dim=0).item()
           for name, vec in toy.items() for ref, col in (("D[:, 0]", D[:, 0]), ("R[0]", R[0]))}
print({key: round(v, 3) for key, v in toy_cos.items()})
off_target = {name: ((R @ vec) / (R @ vec)[0])[1:].norm().item() for name, vec in toy.items()}
print("off-target change when feature 0 rises by one unit:", {key: round(v, 3) for key, v in off_target.items()})
claim("toy_mean_difference_is_representation", toy_cos["mean difference vs D[:, 0]"], ">", 0.99,
      why="with independent features, the mean difference recovers the representation column D[:, 0]")
claim("toy_probe_is_readout", toy_cos["logistic probe vs R[0]"] - toy_cos["logistic probe vs D[:, 0]"], ">", 0.0,
      why="the learned probe is closer to the readout direction R[0] than to the representation D[:, 0]")
claim("toy_probe_off_target", off_target["logistic probe"], ">", 10 * off_target["mean difference"],
      why="raising feature 0 along the probe moves the other features far more than along the mean difference")

# %% [markdown]
# The mean difference writes feature 0 alone; the probe, which must also *cancel* the other
# features to read feature 0 cleanly, drags them along when used to write.
#
# Back to the real model: a logistic-regression probe on the sentiment pair differences (which
# member of a pair is the pleasant one), at the chosen layer, against the mean difference at
# the **same norm**, on the test templates.

# %%
layer, push = choices["sentiment"].option
train_d = diffs["sentiment"][layer]
lr = LogisticRegression(C=1.0, fit_intercept=False, max_iter=5000).fit(
    torch.cat([train_d, -train_d]).numpy(), np.r_[np.ones(len(train_d)), np.zeros(len(train_d))])
size = push * typical_norm[layer]
probe_vector = unit(torch.tensor(lr.coef_[0], dtype=torch.float32)) * size
mean_vector = unit(vectors["sentiment"][layer]) * size
require_equal_norm(probe_vector, mean_vector, what="probe direction")
shift, _ = behaviour_shift("sentiment", sentiment.items(splits["sentiment"].test), layer,
                           torch.stack([mean_vector, probe_vector]))
probe_vs_mean = stats.paired_bootstrap(shift[0].numpy(), shift[1].numpy())
probe_cos = F.cosine_similarity(probe_vector, mean_vector, dim=0).item()
print(f"cosine(probe, mean difference) = {probe_cos:.2f}; test shift: mean difference {shift[0].mean():+.2f}, "
      f"probe {shift[1].mean():+.2f} (difference {probe_vs_mean.value:+.2f}, "
      f"95% CI {probe_vs_mean.ci[0]:+.2f} to {probe_vs_mean.ci[1]:+.2f})")
claim("probe_agrees_with_mean_difference", probe_cos, ">", 0.9,
      why="on templated sentiment pairs the probe and the mean difference point almost the same way")

# %% [markdown]
# Here the two directions nearly coincide (the printed cosine): the pair differences are so
# consistent that the best reader of "which member is the pleasant one" *is* their mean, and
# the two steer alike. The toy world is the warning for the general case: the more the
# model's features overlap, the further the best reader drifts from the best writer.
#
# ## What you measured

# %%
summary = record(
    "01_steering", layers=LAYERS, typical_norm=typical_norm,
    actadd={"layer": ACTADD_LAYER, "push": ACTADD_PUSH, "heldout_shift": float(actadd_shift.mean()),
            "random_p95": actadd_p95},
    choice={n: {"layer": c.option[0], "push": c.option[1], "val_shift": c.score, "kl": val_cost[n][c.option]}
            for n, c in choices.items()},
    test_shift={n: float(s.mean()) for n, s in test_shift.items()}, random_p95=random_p95, beats_random=beats_random,
    beats_shuffled=beats_shuffled,
    unembedding_verdicts=verdicts,
    baselines={n: {kind: float(v.mean()) for kind, v in b.items()} for n, b in baselines.items()},
    vs_baselines={n: {kind: [d.value, *d.ci] for kind, d in v.items()} for n, v in vs.items()},
    prompting=prompting, ab_format=ab_result,
    steerability={n: {"mean": means[n], "sd": spread[n], "cv": cv[n], "anti_fraction": anti[n][0],
                      "anti_ci": anti[n][1]}
                  for n in behaviours},
    pooled_anti=pooled_anti, predictors={key: [t.value, t.p_value] for key, t in rank_tests.items()},
    toy=toy_cos, toy_off_target=off_target, probe_cos=probe_cos, probe_minus_mean=probe_vs_mean.value)

# %% [markdown]
# ## Conclusions
# - **Steering, not luck.** On test templates and words the vector never saw, the
#   mean-difference vector beats the 95th percentile of equal-norm random vectors on at least
#   half the behaviours (which ones: printed), and beats the shuffled-label vector on at least
#   half (printed too; French, the weakest, can fall inside the noise).
# - **Steering, or priming?** The unembedding direction of the construction words is the
#   control that could win, and on most behaviours it does as well as the vector or better
#   (the claim and the printed verdicts): the vector's effect is explained by pushing up words
#   of the same meaning. Where the vector wins, the winner changes with the seed.
# - **One pair is not enough here** (activation addition): on prompts that did not choose its
#   layer and push, its shift is read against random position-aligned differences — the
#   printed verdict and interval.
# - **Choices cost.** Every layer and push was chosen on validation templates within a KL
#   budget on neutral text; the prompting comparison is made at the same KL.
# - **Unreliable per prompt.** Steerability spreads widely within a behaviour. The
#   anti-steerable share, with its exact interval, is what this small model shows on these
#   templates; where it is 0%, the interval's upper end is the honest statement.
# - **The A/B format** does not work at this scale (the printed preference and shift).
# - **Reading and writing differ**: in the toy world the mean difference writes the
#   representation column and the probe does not; on the real model, for these consistent
#   pairs, the two directions nearly coincide (the printed cosine).
#
# ## Going further
# - Full scale on a GPU: `GLASSBOX_SCALE=full` sweeps 16 relative depths and five pushes with
#   100 random draws; set `MODEL_NAME = "Qwen/Qwen2.5-1.5B-Instruct"` (parameters cell) to repeat
#   everything — the A/B section included — on a chat model where CAA is known to work.
# - Add a behaviour to `utils/behaviours.py` (templates, construction pairs, a disjoint lexicon)
#   and see whether it beats the unembedding baseline.
# - Im & Li (arXiv 2502.02716) compare mean-difference vectors with classifier directions
#   across tasks; section 4 is the smallest version of that comparison.

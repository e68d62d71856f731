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
# # 00 · Orientation: tools, hooks and the controls mindset
#
# **What you will learn**
# - load a real language model that ships with the course and read its tokens and predictions;
# - cache its activations and look inside: the residual stream, its norms, attention patterns;
# - write *hooks* that change a forward pass: ablate one attention head (zero, mean, resample),
#   add a vector;
# - read the model's intermediate guesses with the *logit lens*, and fit a *tuned lens*;
# - meet the habit this course is built on: **every finding meets a control**, and a finding
#   that depends on how you measured it is not a finding about the model;
# - train a tiny transformer from scratch with the course's training helper.
#
# **Papers**: Elhage et al. 2021, "A Mathematical Framework for Transformer Circuits"
# (transformer-circuits.pub); nostalgebraist 2020, "interpreting GPT: the logit lens"
# (LessWrong); Xiao et al. 2023, "Efficient Streaming Language Models with Attention Sinks"
# (arXiv 2309.17453); Sun et al. 2024, "Massive Activations in Large Language Models"
# (arXiv 2402.17762); Belrose et al. 2023, "Eliciting Latent Predictions from Transformers
# with the Tuned Lens" (arXiv 2303.08112); Yom Din et al. 2023, "Jump to Conclusions" (arXiv
# 2303.09435); Zhang & Nanda 2023, "Towards Best Practices of Activation Patching" (arXiv
# 2309.16042).
#
# **Time**: about 60 minutes. **Runs on**: a laptop CPU (fast scale, about two minutes of
# compute) or a GPU (full scale, the same code).
#
# The model is SmolLM2-135M-Instruct (Apache-2.0): 30 layers, 9 attention heads per layer,
# residual width 576. Its weights come inside a Python package, so nothing here needs the
# internet.

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
SETUP = setup("00_orientation")

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from utils.activations import at_last, layer_at, next_token_loss, resid
from utils.checks.orientation import (check_add_vector_hook, check_fit_translator, check_logit_lens,
                                     check_held_out_selection, check_replace_head_hook, check_residual_norms,
                                     check_zero_head_hook)
from utils.controls import require_disjoint
from utils.data import stdlib_docstrings
from utils.models import load_lm, tiny_transformer
from utils.plotting import heatmap, lines
from utils.report import claim, record
from utils.stats import bootstrap_ci, choose, split_units
from utils.training import column, train

# %% tags=["parameters"]
N_RANDOM_HEADS = scale(fast=20, full=60, smoke=3)  # random heads in the ablation control
TINY_STEPS = scale(fast=300, full=1000, smoke=20)  # training steps for the tiny transformer
N_SELECT = scale(fast=6, full=11, smoke=3)  # prompts used to pick the "most important" head
LENS_TOP_K = 10                            # the logit lens "reads the answer" once it is among the top k
LENS_FRACTIONS = (0, 1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6)   # tuned-lens layers, as fractions of the model's depth
LENS_DOCS = scale(fast=64, full=600, smoke=20)  # stdlib docstrings for the tuned lens (train/val/test 60/20/20%)
LENS_CONTEXT = scale(fast=48, full=128)   # tokens read from each docstring
LENS_RIDGES = (1e-3, 1e-2, 1e-1, 1.0)      # translator regularisation toward the identity, chosen on validation
SHOWN_LAYER_FRACTION = 0.13                # the layer whose strongest sink head is drawn (SmolLM2: 4 of 30)

# %% [markdown]
# ## 1. A model, its tokens and its guesses
#
# `load_lm()` returns a TransformerLens `TransformerBridge`: the Hugging Face model inside,
# with a *hook point* on every intermediate activation. The first call on a new machine
# converts the packaged weights once (about 30 s); later calls take a few seconds.

# %%
model = load_lm()
cfg = model.cfg
print(f"{cfg.n_layers} layers, {cfg.n_heads} heads, d_model {cfg.d_model}, vocabulary {cfg.d_vocab}")

prompt = "The Eiffel Tower is located in the city of"
tokens = model.to_tokens(prompt)
print(model.to_str_tokens(tokens))

# %% [markdown]
# The model reads a string as **tokens**. The bridge puts a beginning-of-sequence token,
# `<|im_start|>`, in front: every chat turn of this model starts with it, and we will see in a
# minute that the model treats position 0 very differently from the rest.
#
# The output at each position is a vector of **logits**, one per vocabulary entry: the model's
# guess for the *next* token.

# %%
with torch.no_grad():
    logits = model(tokens)                      # [batch, position, vocabulary]
probs = logits[0, -1].softmax(-1)
top = probs.topk(5)
for p, t in zip(top.values, top.indices):
    print(f"{model.tokenizer.decode(t)!r:>12}  {p:.3f}")
paris = model.to_single_token(" Paris")
runner_up = probs.clone()
runner_up[paris] = 0.0
claim("eiffel_tower_paris_top", (probs[paris].log() - runner_up.max().log()).item(), ">", 0.0,
      why="' Paris' is the model's top completion of the Eiffel Tower prompt (log-prob margin over the runner-up)")

# %% [markdown]
# One prompt is an anecdote. For measurements that should hold beyond one sentence we use a
# small set of factual prompts that all have the same length in tokens: "The capital of X is".

# %%
CAPITALS = {"France": " Paris", "Japan": " Tokyo", "Italy": " Rome", "Germany": " Berlin", "Spain": " Madrid",
            "Russia": " Moscow", "Egypt": " Cairo", "England": " London", "China": " Beijing", "Greece": " Athens",
            "Canada": " Ottawa", "Australia": " Canberra", "Portugal": " Lisbon", "Austria": " Vienna",
            "Ireland": " Dublin", "Norway": " Oslo", "Sweden": " Stockholm", "Poland": " Warsaw", "Peru": " Lima",
            "Kenya": " Nairobi", "Cuba": " Havana", "Chile": " Santiago"}
fact_tokens = model.to_tokens([f"The capital of {country} is" for country in CAPITALS])   # all the same length
fact_lengths = torch.full((len(CAPITALS),), fact_tokens.shape[1])
fact_answers = torch.tensor([model.to_single_token(city) for city in CAPITALS.values()])
with torch.no_grad():
    fact_logits, fact_cache = model.run_with_cache(fact_tokens)
fact_top1 = (at_last(fact_logits, fact_lengths).argmax(-1) == fact_answers).float()
print(f"the model's top guess is the right capital for {int(fact_top1.sum())} of {len(CAPITALS)} prompts")

# %% [markdown]
# ## 2. The residual stream and the attention sink
#
# Each layer *reads from* and *adds to* one running vector per position, the **residual
# stream**. `run_with_cache` runs the model and keeps every hooked activation in a dictionary
# keyed by hook name: `blocks.{layer}.hook_resid_pre` is the stream entering a layer,
# `blocks.{layer}.hook_resid_post` the stream leaving it.

# %%
with torch.no_grad():
    logits, cache = model.run_with_cache(tokens)
print(len(cache), "cached activations, e.g.", cache[f"blocks.{layer_at(model, 0.1)}.hook_resid_pre"].shape)

# %% [markdown]
# ### Exercise 1 — residual-stream norms
# Difficulty 🔴⚪⚪ · Importance 🔵🔵🔵 · ~5 min
#
# Return the L2 norm of the residual stream of the first sequence in the batch at every
# position, entering each layer, plus once more after the last layer: a tensor of shape
# `[n_layers + 1, position]`.

# %%
def residual_norms(cache, n_layers: int) -> torch.Tensor:
    """Norms of the residual stream of batch element 0.

    Row ``l < n_layers`` is ``blocks.{l}.hook_resid_pre``; the last row is
    ``blocks.{n_layers-1}.hook_resid_post``. Returns ``[n_layers + 1, position]``.
    """
    # BEGIN SOLUTION hint: stack the n_layers resid_pre activations and the last resid_post, then take .norm(dim=-1)
    streams = [cache[f"blocks.{layer}.hook_resid_pre"][0] for layer in range(n_layers)]
    streams.append(cache[f"blocks.{n_layers - 1}.hook_resid_post"][0])
    return torch.stack(streams).norm(dim=-1)
    # END SOLUTION


check_residual_norms(residual_norms)

# %%
norms = residual_norms(cache, cfg.n_layers)
heatmap(norms.log10(), title="log10 residual-stream norm", xlabel="position", ylabel="layer (resid_pre; last = output)",
        xticks=model.to_str_tokens(tokens))
plt.show()
sink_ratio = (norms[cfg.n_layers // 2, 0] / norms[cfg.n_layers // 2, 1:].median()).item()
print(f"mid-layer norm at position 0 is {sink_ratio:.0f}x the median of the other positions")

# the same ratio on each of the capital prompts
mid_norms = fact_cache[f"blocks.{cfg.n_layers // 2}.hook_resid_pre"].norm(dim=-1)       # [batch, pos]
fact_sink_ratio = (mid_norms[:, 0] / mid_norms[:, 1:].median(-1).values).cpu().numpy()         # [batch]
print(f"over {len(CAPITALS)} capital prompts: {fact_sink_ratio.min():.0f}x to {fact_sink_ratio.max():.0f}x")
claim("sink_norm_ratio", fact_sink_ratio.mean(), ">", 20, ci=bootstrap_ci(fact_sink_ratio),
      why="position 0's mid-layer residual norm is far (>20x) above the median of the other positions")

# %% [markdown]
# Position 0 is enormous: from the early layers on, its residual norm is the large multiple
# of the other positions' printed above (on every prompt). Sun et al. (2024) call such huge,
# input-independent values **massive activations**. The first token is also where many
# attention heads put attention they do not need — an **attention sink** (Xiao et al. 2023),
# measured next. It matters in every later chapter: averages over positions, probes and
# sparse autoencoders would all be dominated by this one position, so we leave it out of them.

# %% [markdown]
# ### Attention patterns
# `blocks.{l}.attn.hook_pattern` has shape `[batch, head, query position, key position]`;
# each row is a probability distribution over earlier positions.

# %%
patterns = torch.stack([cache[f"blocks.{layer}.attn.hook_pattern"][0] for layer in range(cfg.n_layers)])
sink_mass = patterns[:, :, 1:, 0].mean(-1)     # [layer, head]: attention from real tokens to position 0
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
layer = layer_at(model, SHOWN_LAYER_FRACTION)
head = int(sink_mass[layer].argmax())
heatmap(patterns[layer, head], ax=axes[0], title=f"L{layer}H{head} attention", xlabel="key", ylabel="query",
        xticks=model.to_str_tokens(tokens), yticks=model.to_str_tokens(tokens))
heatmap(sink_mass, ax=axes[1], title="attention mass on position 0", xlabel="head", ylabel="layer")
plt.tight_layout()
plt.show()
print(f"median head sends {sink_mass.median():.0%} of its attention to position 0")

# over the capital prompts: the median head's share, against what uniform attention would give position 0
fact_patterns = torch.stack([fact_cache[f"blocks.{layer}.attn.hook_pattern"] for layer in range(cfg.n_layers)])
fact_sink_mass = fact_patterns[..., 1:, 0].mean(-1)                      # [layer, batch, head]
per_prompt = fact_sink_mass.permute(1, 0, 2).flatten(1).median(-1).values.cpu().numpy()   # [batch]
uniform_share = (1.0 / torch.arange(2, fact_tokens.shape[1] + 1)).mean().item()   # query q spreads over q + 1 keys
print(f"capital prompts: median head sends {per_prompt.mean():.0%} to position 0 "
      f"(uniform attention: {uniform_share:.0%})")
claim("median_head_sink_attention", per_prompt.mean(), ">", uniform_share, ci=bootstrap_ci(per_prompt),
      why="the median head attends to position 0 more than uniform attention would")

# %% [markdown]
# ## 3. Hooks: change the forward pass
#
# A hook is a function `hook_fn(activation, hook) -> activation` attached to a hook point.
# `model.run_with_hooks(tokens, fwd_hooks=[(name, hook_fn)])` runs once with it; `with
# model.hooks(fwd_hooks=...)` keeps it for a block of code. Hooks are how we *intervene*:
# an observation becomes a causal claim only when changing the activation changes the output.
#
# ### Exercise 2 — ablate one head
# Difficulty 🔴⚪⚪ · Importance 🔵🔵🔵 · ~5 min
#
# `blocks.{l}.attn.hook_z` holds each head's output before the output projection, shape
# `[batch, position, head, d_head]`. Zeroing one head's slice removes that head from the model.

# %%
def zero_head_hook(head: int):
    """A hook for ``blocks.{l}.attn.hook_z`` that zeroes head ``head`` at every position."""
    # BEGIN SOLUTION hint: z has shape [batch, position, head, d_head]; index the head axis
    def hook_fn(z, hook):
        z = z.clone()
        z[:, :, head, :] = 0.0
        return z
    return hook_fn
    # END SOLUTION


check_zero_head_hook(zero_head_hook)

# %% [markdown]
# ### Exercise 3 — add a vector to the residual stream
# Difficulty 🔴⚪⚪ · Importance 🔵🔵🔵 · ~5 min
#
# Adding a direction to the residual stream is the core move of activation steering
# (chapter 01). Add `coeff * vector` at **every** position.

# %%
def add_vector_hook(vector: torch.Tensor, coeff: float):
    """A hook for a residual-stream point ``[batch, position, d_model]`` adding ``coeff * vector`` everywhere."""
    # BEGIN SOLUTION hint: broadcasting a [d_model] vector over [batch, position, d_model] does it
    def hook_fn(resid, hook):
        return resid + coeff * vector.to(resid.device, resid.dtype)
    return hook_fn
    # END SOLUTION


check_add_vector_hook(add_vector_hook)

# %% [markdown]
# A first use: push the last layer's residual stream along the unembedding direction of
# `" Rome"`. The logit of " Rome" should rise in proportion to the coefficient — a sanity
# check that the hook does what we think before we use it on anything subtle.

# %%
rome = model.to_single_token(" Rome")
direction = model.W_U[:, rome] / model.W_U[:, rome].norm()
last = f"blocks.{cfg.n_layers - 1}.hook_resid_post"
coeffs = [0.0, 10.0, 20.0, 40.0]
rome_logits = []
for c in coeffs:
    with torch.no_grad():
        out = model.run_with_hooks(tokens, fwd_hooks=[(last, add_vector_hook(direction, c))])
    rome_logits.append(out[0, -1, rome].item())
print(dict(zip(coeffs, np.round(rome_logits, 2))))
assert all(b > a for a, b in zip(rome_logits, rome_logits[1:])), \
    "hook sanity: the Rome logit should rise with the coefficient"

# %% [markdown]
# ## 4. The logit lens
#
# If the residual stream is a running guess, we can try to read the guess before the end: send
# each layer's stream through the final norm and the unembedding as if it were the last layer,
# and see at which layer the answer appears.
#
# ### Exercise 4 — logit lens
# Difficulty 🔴🔴⚪ · Importance 🔵🔵🔵 · ~10 min
#
# Use `model.ln_final` and `model.unembed` (both accept `[..., d_model]`).

# %%
def logit_lens(cache, model, position: int = -1) -> torch.Tensor:
    """Logits read from the residual stream of batch element 0 at ``position``.

    Rows as in ``residual_norms``: ``resid_pre`` of each layer, then the final ``resid_post``.
    Returns ``[n_layers + 1, d_vocab]``; the last row equals the model's own logits.
    """
    # BEGIN SOLUTION hint: apply model.ln_final before model.unembed
    n_layers = model.cfg.n_layers
    streams = [cache[f"blocks.{layer}.hook_resid_pre"][0, position] for layer in range(n_layers)]
    streams.append(cache[f"blocks.{n_layers - 1}.hook_resid_post"][0, position])
    return model.unembed(model.ln_final(torch.stack(streams)))
    # END SOLUTION


check_logit_lens(logit_lens, model)

# %%
with torch.no_grad():
    lens = logit_lens(cache, model)
paris_rank = (lens > lens[:, [paris]]).sum(-1)
paris_prob = lens.softmax(-1)[:, paris]
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
lines(range(cfg.n_layers + 1), {"rank of ' Paris'": paris_rank + 1}, ax=axes[0], logy=True, xlabel="layer",
      ylabel="rank")
lines(range(cfg.n_layers + 1), {"P(' Paris')": paris_prob}, ax=axes[1], xlabel="layer", ylabel="probability")
plt.tight_layout()
plt.show()
first_top = int((paris_rank == 0).nonzero()[0]) if (paris_rank == 0).any() else None
print(f"' Paris' becomes the top guess at layer {first_top} of {cfg.n_layers}; "
      f"rank at layer 0: {paris_rank[0].item() + 1}")

# %% [markdown]
# One prompt again. Over the capital prompts: at which layer does the right answer first enter
# the lens's top `LENS_TOP_K` (the final row, `n_layers`, is the model's own output)?

# %%
enters = []
with torch.no_grad():
    for i, answer in enumerate(fact_answers):
        one = {name: fact_cache[name][i: i + 1] for name in fact_cache.keys() if "hook_resid_p" in name}
        lens_i = logit_lens(one, model)                                     # [n_layers + 1, d_vocab]
        rank_i = (lens_i > lens_i[:, [answer]]).sum(-1)                     # [n_layers + 1]
        inside = (rank_i < LENS_TOP_K).nonzero()
        enters.append(int(inside[0]) if len(inside) else cfg.n_layers + 1)   # never: one past the output
enters = np.array(enters)
print(f"answer enters the top {LENS_TOP_K} at layer: {sorted(enters.tolist())} (mean {enters.mean():.1f})")
claim("lens_answer_enters_late", enters.mean(), ">", cfg.n_layers / 2, ci=bootstrap_ci(enters),
      why=f"the logit lens finds the answer in its top {LENS_TOP_K} only in the second half of the model")

# %% [markdown]
# On this small model the lens reads the answer only near the end: the layers printed above
# are the last few of 30, and ' Paris' is the lens's top guess only at the layer printed for
# the Eiffel prompt. Early layers hold the prompt's last token (layer 0 is its embedding),
# not the answer. The lens is a reading tool, not a guarantee that the answer forms early.

# %% [markdown]
# ### A tuned lens
#
# The logit lens assumes every layer speaks the final layer's language. It need not: a layer
# can hold the answer in directions the unembedding does not read yet. A **tuned lens**
# (Belrose et al. 2023, "Eliciting Latent Predictions from Transformers with the Tuned Lens",
# arXiv 2303.08112) first sends each layer's stream through its own learned affine map, a
# *translator*, and only then through the final norm and unembedding. Belrose et al. train the
# translators on the KL to the model's output by gradient descent; on two CPU cores we fit the
# same affine form in closed form, by least squares onto the final residual stream (as Yom Din et
# al. 2023, "Jump to Conclusions", arXiv 2303.09435, do), pulled toward the identity — the
# logit lens — by a ridge penalty whose size is chosen on validation text.
#
# The measure is Belrose et al.'s: the KL divergence from the model's own next-token
# distribution to the lens's, on held-out text. The data are standard-library docstrings,
# split by docstring into training, validation and test; position 0 is left out, as
# everywhere in the course.
#
# ### Exercise 5 — fit a translator
# Difficulty 🔴🔴⚪ · Importance 🔵🔵⚪ · ~10 min
#
# Find `W [d, d]` and `b [d]` minimising `‖h W + b − target‖² + ridge · ‖W − I‖²` over the rows
# of `h` and `target` (`[n, d]`). The bias is not penalised, so centre both first: `b` is then
# `mean(target) − mean(h) W`, and `W` solves `(XᵀX + ridge·I) W = XᵀY + ridge·I` for the
# centred `X`, `Y`. A large ridge gives back the identity: the logit lens plus a shift.

# %%
def fit_translator(h: torch.Tensor, target: torch.Tensor, ridge: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(W [d, d], b [d])`` with ``h @ W + b`` ≈ ``target``, ridge-regularised toward ``W = I``."""
    # BEGIN SOLUTION hint: mu_h, mu_t = h.mean(0), target.mean(0); X, Y = h - mu_h, target - mu_t; eye = torch.eye(d);
    # ... W = torch.linalg.solve(X.T @ X + ridge * eye, X.T @ Y + ridge * eye); b = mu_t - mu_h @ W
    h64, t64 = h.double(), target.double()        # float64: XᵀX of activations with huge norms is ill-conditioned
    mu_h, mu_t = h64.mean(0), t64.mean(0)
    x, y = h64 - mu_h, t64 - mu_t
    eye = torch.eye(h.shape[1], dtype=torch.float64)
    w = torch.linalg.solve(x.T @ x + ridge * eye, x.T @ y + ridge * eye)
    return w.to(h.dtype), (mu_t - mu_h @ w).to(h.dtype)
    # END SOLUTION


check_fit_translator(fit_translator)

# %%
lens_layers = sorted({layer_at(model, f) for f in LENS_FRACTIONS})
docstrings = stdlib_docstrings(LENS_DOCS, seed=SETUP.seed)
doc_split = split_units(np.arange(len(docstrings)), fractions=(0.6, 0.2, 0.2), seed=SETUP.seed)
lens_tokens = [model.to_tokens(d.text)[0, : LENS_CONTEXT + 1] for d in docstrings]      # BOS + LENS_CONTEXT


def streams(rows):
    """``{layer: [n_positions, d_model]}`` at the lens layers and the output (``n_layers``), position 0 left out;
    and each position's docstring ``[n_positions]``."""
    # the Hugging Face model inside the bridge stops after the last block: no [batch, pos, d_vocab] logits to hold
    acts = resid(model.original_model, [lens_tokens[r] for r in rows], lens_layers + [cfg.n_layers], batch_size=8)
    return acts, np.concatenate([np.full(len(lens_tokens[r]) - 1, r) for r in rows])


def kl_to_output(lenses: dict, final, chunk=64):
    """For each named lens input ``[n_positions, d_model]``: per position, KL(the model's next-token distribution ‖
    the lens's), in nats. The model's own distribution is computed once per chunk of positions, for all lenses."""
    out = {name: [] for name in lenses}
    with torch.no_grad():
        for k in range(0, len(final), chunk):                                  # [chunk, d_vocab] at a time
            target = model.unembed(model.ln_final(final[k: k + chunk].to(cfg.device))).log_softmax(-1)
            target_p = target.exp()
            for name, stream in lenses.items():
                lens_logp = model.unembed(model.ln_final(stream[k: k + chunk].to(cfg.device))).log_softmax(-1)
                out[name].append((target_p * (target - lens_logp)).sum(-1).cpu())
    return {name: torch.cat(kl).numpy() for name, kl in out.items()}


(train_acts, _), (val_acts, _), (test_acts, test_doc) = (streams(r) for r in (doc_split.train, doc_split.val,
                                                                               doc_split.test))
require_disjoint(doc_split.train.tolist(), doc_split.test.tolist(), what="translator-training and test docstrings")
final_train, final_val, final_test = (a[cfg.n_layers] for a in (train_acts, val_acts, test_acts))
fits = {}
for layer in lens_layers:
    h = train_acts[layer]
    scale_of_h = float((h - h.mean(0)).pow(2).sum() / h.shape[1])      # ridge in units of the average eigenvalue
    fits[layer] = {r: fit_translator(h, final_train, r * scale_of_h) for r in LENS_RIDGES}
val_kl = kl_to_output({(layer, r): val_acts[layer] @ w + b for layer in lens_layers
                       for r, (w, b) in fits[layer].items()}, final_val)
ridge_choice = {layer: choose({r: -float(val_kl[(layer, r)].mean()) for r in LENS_RIDGES},
                              chosen_on=doc_split.val.tolist()) for layer in lens_layers}
for choice in ridge_choice.values():
    require_disjoint(choice, doc_split.test.tolist(), what="ridge-choice and test docstrings")
chosen_fit = {layer: fits[layer][ridge_choice[layer].option] for layer in lens_layers}
test_kl = kl_to_output({**{("logit", layer): test_acts[layer] for layer in lens_layers},
                        **{("tuned", layer): test_acts[layer] @ w + b for layer, (w, b) in chosen_fit.items()}},
                       final_test)
logit_kl = {layer: test_kl[("logit", layer)] for layer in lens_layers}              # {layer: [n_test_positions]}
tuned_kl = {layer: test_kl[("tuned", layer)] for layer in lens_layers}
lines(lens_layers, {"logit lens": [logit_kl[layer].mean() for layer in lens_layers],
                    "tuned lens": [tuned_kl[layer].mean() for layer in lens_layers]},
      xlabel="layer", ylabel="KL to the model's output (nats)", title="Held-out docstrings")
plt.show()
for layer in lens_layers:
    print(f"layer {layer:>2}: KL logit lens {logit_kl[layer].mean():5.2f}, tuned lens {tuned_kl[layer].mean():5.2f} "
          f"nats (ridge {ridge_choice[layer].option:g})")
gain = np.stack([logit_kl[layer] - tuned_kl[layer] for layer in lens_layers], 1)     # [n_test_positions, layer]
claim("tuned_lens_beats_logit_lens", gain.mean(0).min(), ">", 0,
      ci=bootstrap_ci(gain, lambda g: g.mean(0).min(), groups=test_doc),
      why="at every layer it was fitted for, the tuned lens is closer (lower KL) to the model's output than the logit "
          "lens, on held-out docstrings (the smallest gain over the layers, its interval over docstrings)")

# %% [markdown]
# The translators were fitted on a few thousand tokens and still read the model's output
# better than the unembedding alone at every fitted layer, most of all at layer 0, where the
# logit lens mostly repeats the current token (the embedding and unembedding are tied). So
# "the answer appears late" in the logit lens is partly a statement about the lens. Neither
# lens shows what the model *uses*: a translator can find information the later layers ignore.

# %% [markdown]
# ## 5. The controls mindset: is the "most important head" special?
#
# A tempting experiment: ablate each of the 270 heads in turn, find the one whose removal
# hurts a factual-recall task most, and call it the "capital-city head". Two things can fool
# us here, and a control catches each:
#
# 1. **Selection on the same data.** The head that looks best on the prompts we searched
#    will look a little better than it is (the winner's curse). So we *select* on some of the
#    prompts and *measure* on others, split at random from the seed.
# 2. **No reference.** "Ablating it costs 2 nats" means nothing until we know what ablating
#    an ordinary head costs. So we ablate random heads too.
#
# And a third question a control answers: is the head specific to capitals, or does the model
# need it for everything? We measure its effect on ordinary prose too.

# %%
prompt_split = split_units(np.arange(len(CAPITALS)), fractions=(0.0, 0.5, 0.5), seed=SETUP.seed)
select, measure = torch.as_tensor(prompt_split.val[:N_SELECT]), torch.as_tensor(prompt_split.test)
print("select on:", [list(CAPITALS)[i] for i in select], "| measure on:", [list(CAPITALS)[i] for i in measure])


def answer_logprobs(logits, answers):
    """Log-probability of the right answer at each prompt's last position: ``[batch]``."""
    last = at_last(logits, torch.full((len(answers),), logits.shape[1]))           # [batch, d_vocab]
    return last.log_softmax(-1).gather(1, answers[:, None].to(last.device))[:, 0]


def answer_logprob(logits, answers):
    """Mean log-probability of the right answer at the last position."""
    return answer_logprobs(logits, answers).mean().item()


def head_ablation_effects(tokens, answers, layer, clean):
    """Drop from ``clean`` in answer log-prob when each head of ``layer`` is ablated, all heads in one batch."""
    n_heads, batch = cfg.n_heads, tokens.shape[0]
    def ablate_each(z, hook):                       # copy h of the batch loses head h
        z = z.clone().view(n_heads, batch, *z.shape[1:])
        z[torch.arange(n_heads), :, :, torch.arange(n_heads)] = 0.0
        return z.view(n_heads * batch, *z.shape[2:])
    with torch.no_grad():
        logits = model.run_with_hooks(tokens.repeat(n_heads, 1),
                                      fwd_hooks=[(f"blocks.{layer}.attn.hook_z", ablate_each)])
    per_head = logits[:, -1].log_softmax(-1).gather(1, answers.repeat(n_heads)[:, None]).view(n_heads, batch).mean(1)
    return clean - per_head


with torch.no_grad():
    clean_select = answer_logprob(model(fact_tokens[select]), fact_answers[select])
effects = torch.stack([head_ablation_effects(fact_tokens[select], fact_answers[select], layer, clean_select)
                       for layer in tqdm(range(cfg.n_layers), desc="ablating heads")])   # [layer, head]
head_choice = choose({divmod(i, cfg.n_heads): float(e) for i, e in enumerate(effects.flatten())},
                     chosen_on=select.tolist())
heatmap(effects, title="drop in answer log-prob when a head is ablated (selection half)", xlabel="head", ylabel="layer")
plt.show()
print(f"most important head on the selection half: L{head_choice.option[0]}H{head_choice.option[1]} "
      f"({effects.max():.2f} nats)")

# %% [markdown]
# Now the control: the same measurement on the held-out half, for the chosen head and for
# random heads.

# %%
with torch.no_grad():
    clean_measure_each = answer_logprobs(model(fact_tokens[measure]), fact_answers[measure])   # [prompt]
require_disjoint(head_choice, measure.tolist(), what="head-selection prompts and held-out prompts")


def ablation_drops(layer, head, hook_fn=None):
    """Drop in answer log-prob on each held-out prompt when one head is ablated: ``[prompt]``. The head is zeroed,
    unless ``hook_fn`` (a hook on ``blocks.{layer}.attn.hook_z``) removes it another way."""
    hook_fn = zero_head_hook(head) if hook_fn is None else hook_fn
    with torch.no_grad():
        logits = model.run_with_hooks(fact_tokens[measure], fwd_hooks=[(f"blocks.{layer}.attn.hook_z", hook_fn)])
    return (clean_measure_each - answer_logprobs(logits, fact_answers[measure])).cpu().numpy()


def ablation_drop(layer, head, hook_fn=None):
    """Mean drop in answer log-prob on the held-out prompts when one head is ablated."""
    return float(ablation_drops(layer, head, hook_fn).mean())


# %% [markdown]
# ### Exercise 6 — select on one half, measure on the other
# Difficulty 🔴⚪⚪ · Importance 🔵🔵🔵 · ~10 min
#
# Write the experiment itself. Pick the head with the largest effect on the *selection*
# prompts; then, on the held-out prompts only, measure it and `n_random` random heads (the
# first ones of `candidates`, a list in random order, skipping the chosen head: it is no
# control). Return what a referee needs to read the result: the chosen head, its selection
# score, its held-out drop and the random heads' held-out drops.

# %%
def held_out_selection(select_effects: torch.Tensor, held_out_drop, candidates: list, n_random: int) -> dict:
    """select_effects ``[layer, head]``: drop on the selection prompts. ``held_out_drop(layer, head)``
    measures one head on the held-out prompts. Returns ``{"head": (layer, head), "selected": float,
    "held_out": float, "random_heads": [(layer, head)] * n_random, "random": np.ndarray [n_random]}``."""
    # BEGIN SOLUTION hint: divmod(int(select_effects.argmax()), n_heads) turns the flat argmax into (layer, head);
    # ... call held_out_drop only for the chosen head and the random ones
    head = divmod(int(select_effects.argmax()), select_effects.shape[1])
    controls = [lh for lh in candidates if tuple(lh) != head][:n_random]
    return {"head": head, "selected": float(select_effects.max()), "held_out": float(held_out_drop(*head)),
            "random_heads": controls, "random": np.array([held_out_drop(*lh) for lh in controls])}
    # END SOLUTION


check_held_out_selection(held_out_selection)

# %%
generator = torch.Generator().manual_seed(SETUP.seed)
candidates = [divmod(int(i), cfg.n_heads) for i in torch.randperm(cfg.n_layers * cfg.n_heads, generator=generator)]
selection = held_out_selection(effects, ablation_drop, candidates, N_RANDOM_HEADS)
assert selection["head"] == head_choice.option, "held_out_selection chose another head than choose() did"
best_layer, best_head = selection["head"]
best_drops = ablation_drops(best_layer, best_head)                 # per held-out prompt, for the interval
best_drop, random_drops, random_heads = float(best_drops.mean()), selection["random"], selection["random_heads"]
print(f"L{best_layer}H{best_head}: {selection['selected']:.2f} nats on the prompts that chose it, "
      f"{best_drop:.2f} on held-out prompts (a fall from the first to the second is the winner's curse)")
plt.hist(random_drops, bins=20, label="random heads")
plt.axvline(best_drop, color="red", label=f"L{best_layer}H{best_head}")
plt.xlabel("drop in answer log-prob (held-out prompts)")
plt.legend()
plt.show()
print(f"chosen head: {best_drop:.2f} nats; random heads: median {np.median(random_drops):.3f}, "
      f"95th percentile {np.quantile(random_drops, 0.95):.3f}")
claim("chosen_head_heldout_drop_vs_random", best_drop, ">", np.quantile(random_drops, 0.95),
      ci=bootstrap_ci(best_drops),
      why="on held-out prompts, ablating the chosen head costs more than the 95th percentile of random heads")

# %% [markdown]
# And specificity: the next-token loss on ordinary English prose with the same head ablated,
# against the same random heads.

# %%
prose = ("The library keeps its books on tall shelves, and readers may borrow up to five at a time. "
         "Late returns are charged a small fee, which is used to buy new books for the children's room.")
prose_tokens = model.to_tokens(prose)


def prose_loss(hooks=()):
    with torch.no_grad():
        logits = model.run_with_hooks(prose_tokens, fwd_hooks=list(hooks))
    return next_token_loss(logits, prose_tokens, per_token=True)[:, 1:].mean().item()   # skip the BOS prediction


clean_prose = prose_loss()
best_prose = prose_loss([(f"blocks.{best_layer}.attn.hook_z", zero_head_hook(best_head))]) - clean_prose
random_prose = np.array([prose_loss([(f"blocks.{l}.attn.hook_z", zero_head_hook(h))]) - clean_prose
                         for l, h in random_heads])
print(f"prose loss {clean_prose:.2f}; {best_prose:+.3f} with L{best_layer}H{best_head} ablated; "
      f"random heads: median {np.median(random_prose):+.3f}, 95th percentile {np.quantile(random_prose, 0.95):+.3f}")

# %% [markdown]
# Read the two numbers together. If the chosen head also hurts ordinary prose more than
# almost any random head does, it is not a "capital-city head": it is machinery the model needs
# for everything (heads in the first layers that set up the attention sink are typical
# culprits). That is what the claim below states, and it holds on this model. The zero
# ablation told us the head is *necessary*; only the control on other text tells us whether it
# is *specific*. And "necessary" itself depends on how the head was removed, which we test
# next.

# %%
claim("chosen_head_is_general", best_prose, ">", np.quantile(random_prose, 0.95),
      why="ablating the chosen head raises the loss on unrelated prose more than 95% of random heads do: "
          "it is general machinery, not capital-specific")

# %% [markdown]
# ### Zero is not the only way to remove a head
#
# Zeroing a head sets its output to a value it may never produce. For a head whose output is
# almost the same on every input (much of what the attention-sink heads write is), zero is far
# from anything the next layers have seen, and the damage measures that surprise, not the
# information the head carries. Two gentler ablations keep the output *typical* and remove
# only what depends on the input (Zhang & Nanda 2023, "Towards Best Practices of Activation
# Patching", arXiv 2309.16042, compare such choices):
#
# - **mean ablation**: the head's output is replaced by its mean over the selection prompts,
#   position by position (all the capital prompts have the same length);
# - **resample ablation**: by its output on a *different* prompt: each held-out prompt gets
#   the head's output from a randomly drawn selection prompt (another country).
#
# Both reference sets are the selection prompts, so nothing about the held-out prompts leaks in.
#
# ### Exercise 7 — replace a head's output
# Difficulty 🔴⚪⚪ · Importance 🔵🔵🔵 · ~5 min
#
# `replacement` has shape `[batch or 1, position, d_head]`: one row for every batch row
# (resample), or one row broadcast to all of them (mean). Replace head `head`'s slice of
# `hook_z` with it; leave the other heads alone.

# %%
def replace_head_hook(head: int, replacement: torch.Tensor):
    """A hook for ``blocks.{l}.attn.hook_z`` that replaces head ``head``'s output by ``replacement``."""
    # BEGIN SOLUTION hint: z[:, :, head] has shape [batch, position, d_head]; clone z, then assign
    # ... replacement.to(z.device, z.dtype).expand_as(z[:, :, head]) to that slice
    def hook_fn(z, hook):
        z = z.clone()
        z[:, :, head] = replacement.to(z.device, z.dtype).expand_as(z[:, :, head])
        return z
    return hook_fn
    # END SOLUTION


check_replace_head_hook(replace_head_hook)

# %%
ABLATIONS = ("zero", "mean", "resample")
with torch.no_grad():
    _, select_z = model.run_with_cache(fact_tokens[select], names_filter=lambda name: name.endswith("attn.hook_z"))
donors = torch.randint(len(select), (len(measure),), generator=torch.Generator().manual_seed(SETUP.seed))
require_disjoint(select[donors].tolist(), measure.tolist(), what="resample donors and held-out prompts")


def gentle_hook(layer, head, how):
    """The hook replacing one head's output on the held-out prompts: by its mean or by a donor's (``how``)."""
    z = select_z[f"blocks.{layer}.attn.hook_z"][:, :, head]                    # [n_select, position, d_head]
    return replace_head_hook(head, z.mean(0, keepdim=True) if how == "mean" else z[donors])


# zero ablation was measured above; the same heads, prompts and drops under the two gentler ablations
chosen_under = {"zero": best_drops,                                                      # {how: [prompt]}
                **{how: ablation_drops(best_layer, best_head, gentle_hook(best_layer, best_head, how))
                   for how in ABLATIONS[1:]}}
random_under = {"zero": random_drops, **{how: np.array([ablation_drop(l, h, gentle_hook(l, h, how))
                                                        for l, h in random_heads]) for how in ABLATIONS[1:]}}
fig, axes = plt.subplots(1, 3, figsize=(13, 3.2), sharey=True)
for ax, how in zip(axes, ABLATIONS):
    ax.hist(random_under[how], bins=15, label="random heads")
    ax.axvline(chosen_under[how].mean(), color="red", label=f"L{best_layer}H{best_head}")
    ax.set(title=f"{how} ablation", xlabel="drop in answer log-prob (held-out)")
axes[0].legend()
plt.tight_layout()
plt.show()
for how in ABLATIONS:
    print(f"{how:>8}: chosen head {chosen_under[how].mean():+.3f} nats; random heads median "
          f"{np.median(random_under[how]):+.3f}, 95th percentile {np.quantile(random_under[how], 0.95):+.3f}")
for how in ("mean", "resample"):
    claim(f"chosen_head_ordinary_under_{how}_ablation", chosen_under[how].mean(), "<",
          np.quantile(random_under[how], 0.95), ci=bootstrap_ci(chosen_under[how]),
          why=f"under {how} ablation the head chosen by zero ablation costs no more than the 95th percentile of random "
              "heads: what zeroing it removed was its constant output, not information about the prompt")

# %% [markdown]
# **What the three ablations say together.** Zeroed, the chosen head is the most damaging of
# all; replaced by its own typical output (mean) or by its output on another country's prompt
# (resample), it is an ordinary head. Its output hardly depends on the prompt: the model needs
# it to *be there* (zeroing pushes every later layer off the distribution it was trained on,
# which is also why the prose loss rose), not to carry anything about capitals. The winner of
# a zero-ablation search is often such a head. Before calling a head important, ask which
# ablation was used, and whether a gentler one agrees.
#
# Every chapter ahead pairs a method with controls like these: random vectors for steering,
# control tasks for probes, random models for sparse autoencoders, shuffled labels for lie
# detectors.

# %% [markdown]
# ## 6. Train a tiny transformer
#
# Later chapters train their own small models. Here is the pattern with the course's
# `train` helper: a 2-layer, attention-only transformer learns sequences that repeat a random
# motif of 4 tokens, `a b c d a b c d ...`. The motif changes from sequence to sequence, so
# from position 4 on the next token is predictable only by looking back in the context.

# %%
VOCAB, LENGTH, PERIOD = 50, 16, 4
tiny = tiny_transformer(n_layers=2, d_model=64, n_heads=4, d_vocab=VOCAB, n_ctx=LENGTH, seed=SETUP.seed, device="cpu")
data_gen = torch.Generator().manual_seed(SETUP.seed)


def motif_batch(size=64):
    motif = torch.randint(0, VOCAB, (size, PERIOD), generator=data_gen)
    return motif.repeat(1, LENGTH // PERIOD)


def motif_loss(step):
    x = motif_batch()
    logits = tiny(x)
    return F.cross_entropy(logits[:, PERIOD - 1:-1].reshape(-1, VOCAB), x[:, PERIOD:].reshape(-1))


held_out = motif_batch(512)


def held_out_accuracy(step, model):
    predictions = model(held_out)[:, PERIOD - 1:-1].argmax(-1)
    return {"accuracy": (predictions == held_out[:, PERIOD:]).float().mean().item()}


history = train(tiny, motif_loss, steps=TINY_STEPS, lr=1e-3, log_every=10, on_log=held_out_accuracy,
                desc="tiny transformer")
lines(column(history, "step"),
      {"training loss": column(history, "loss"), "held-out accuracy": column(history, "accuracy")},
      logy=True, xlabel="step")
plt.show()
tiny_accuracy = history[-1]["accuracy"]
with torch.no_grad():
    per_sequence = (tiny(held_out)[:, PERIOD - 1:-1].argmax(-1) == held_out[:, PERIOD:]).float().mean(-1).cpu().numpy()
print(f"held-out accuracy on predictable positions: {tiny_accuracy:.2f} (chance {1 / VOCAB:.2f})")
claim("tiny_transformer_accuracy", per_sequence.mean(), ">", 0.95, ci=bootstrap_ci(per_sequence),
      why="the tiny transformer learns to repeat the motif on held-out sequences")

# %% [markdown]
# *How* does it do it? The same cache tools work on the tiny model. The next token was last
# seen right after an earlier copy of the current token, i.e. `PERIOD - 1` positions back (or
# `2 * PERIOD - 1`, ...). A head that solves the task should put its attention there. We pick
# the head on 64 held-out sequences and measure it on 64 others.

# %%
choose_rows, measure_rows = np.arange(0, 64), np.arange(64, 128)
require_disjoint(choose_rows, measure_rows, what="sequences that pick the head and sequences that score it")
query, key = torch.arange(LENGTH)[:, None], torch.arange(LENGTH)[None, :]
lookback_keys = ((query - key) % PERIOD == PERIOD - 1) & (key < query)      # [query, key]


def lookback_scores(rows):
    """Attention on the look-back keys, per sequence and head: ``{layer: [batch, head]}``."""
    with torch.no_grad():
        _, cache = tiny.run_with_cache(held_out[rows])
    return {layer: (cache[f"blocks.{layer}.attn.hook_pattern"] * lookback_keys).sum(-1)[..., PERIOD:].mean(-1)
            for layer in range(2)}                                           # pattern: [batch, head, query, key]


lookback = {layer: s.mean(0) for layer, s in lookback_scores(choose_rows).items()}   # [head]
print({f"layer {l}": [round(v, 2) for v in scores.tolist()] for l, scores in lookback.items()})
lookback_choice = choose({(l, h): float(lookback[l][h]) for l in range(2) for h in range(len(lookback[l]))},
                         chosen_on=choose_rows.tolist())
require_disjoint(lookback_choice, measure_rows.tolist())
best, best_tiny_head = lookback_choice.option
held_scores = lookback_scores(measure_rows)[best][:, best_tiny_head].cpu().numpy()   # [sequence]
lookback_score = float(held_scores.mean())
with torch.no_grad():
    _, tiny_cache = tiny.run_with_cache(held_out[measure_rows[:1]])
heatmap(tiny_cache[f"blocks.{best}.attn.hook_pattern"][0, best_tiny_head],
        title=f"a look-back head in the tiny model (L{best}H{best_tiny_head})", xlabel="key", ylabel="query")
plt.show()
claim("tiny_lookback_attention", lookback_score, ">", 0.6, ci=bootstrap_ci(held_scores),
      why="the chosen head puts most of its attention on the look-back positions, on sequences that did not choose it")

# %% [markdown]
# ## What you measured

# %%
record("00_orientation", sink_norm_ratio=sink_ratio, median_sink_attention=sink_mass.median(),
       paris_top_from_layer=first_top, lens_answer_enters_mean_layer=enters.mean(),
       capital_top1_accuracy=fact_top1.mean(), chosen_head=f"L{best_layer}H{best_head}",
       chosen_head_heldout_drop=best_drop,
       chosen_head_heldout_drop_by_ablation={how: float(d.mean()) for how, d in chosen_under.items()},
       random_heads_p95_by_ablation={how: float(np.quantile(d, 0.95)) for how, d in random_under.items()},
       lens_kl_logit={layer: float(kl.mean()) for layer, kl in logit_kl.items()},
       lens_kl_tuned={layer: float(kl.mean()) for layer, kl in tuned_kl.items()},
       lens_ridge={layer: c.option for layer, c in ridge_choice.items()},
       random_heads_median_drop=np.median(random_drops), chosen_head_prose_loss_increase=best_prose,
       tiny_transformer_accuracy=tiny_accuracy, tiny_lookback_attention=lookback_score)

# %% [markdown]
# ## Going further
# - Full scale (`GLASSBOX_SCALE=full`) uses more random heads in the control and trains the
#   tiny model longer. On a GPU, `load_lm("Qwen/Qwen2.5-0.5B-Instruct")` or `load_lm("gpt2")`
#   goes through the same code, where the model hub is reachable.
# - Train the translators as Belrose et al. do: start from the least-squares fit and take
#   gradient steps on the KL to the model's output (the unembedding over 49,152 tokens is the
#   cost; a GPU makes it minutes). Does the KL fall further, and at which layers?
# - Repeat the head search with a different task (for example "The opposite of hot is") and
#   check whether the same early head wins. What does that tell you about the search itself?
# - Read "A Mathematical Framework for Transformer Circuits" for why the residual stream is
#   the right object to think with; "Efficient Streaming Language Models with Attention
#   Sinks" (arXiv 2309.17453) for what heads do with the first token, and "Massive Activations
#   in Large Language Models" (arXiv 2402.17762) for why its residual norm is so large.

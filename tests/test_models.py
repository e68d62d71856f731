"""The embedded LM and the loader: offline, exact, fast to reload, clear when it cannot help."""
import json
import time

import pytest
import torch

from utils import models

pytestmark = pytest.mark.lm


def test_bridge_logits_match_plain_transformers(lm):
    hf, tok = models.load_hf()
    tokens = lm.to_tokens(["The capital of France is", "def add(a, b):\n    return"], padding_side="right")
    with torch.no_grad():
        bridge_logits = lm(tokens)
        hf_logits = hf(tokens).logits
    assert (bridge_logits - hf_logits).abs().max().item() < 1e-4


def test_cached_generation_equals_uncached(lm):
    """Regression test: with some transformers versions the KV cache path silently breaks generation."""
    kwargs = dict(max_new_tokens=12, do_sample=False, verbose=False)
    for prompt in ["The capital of France is", "Water freezes at"]:
        cached = lm.generate(prompt, use_past_kv_cache=True, **kwargs)
        uncached = lm.generate(prompt, use_past_kv_cache=False, **kwargs)
        assert cached == uncached
    assert "Paris" in lm.generate("The capital of France is", use_past_kv_cache=True, **kwargs)


def test_reload_uses_the_conversion_cache_and_is_fast(lm):
    folder = models.convert_embedded()
    marker = folder / "glassbox.json"
    stamp = marker.stat().st_mtime
    assert models.convert_embedded() == folder and marker.stat().st_mtime == stamp   # not rebuilt
    assert json.loads(marker.read_text())["source_bytes"] == models.embedded_gguf_path().stat().st_size
    assert not list(folder.parent.glob(f"{folder.name}.tmp-*")), "no half-written conversions left behind"
    start = time.perf_counter()
    models.load_lm()
    assert time.perf_counter() - start < 15   # the acceptance target is 5 s; leave room for a loaded CI machine


def test_unknown_model_offline_names_the_default(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(models.ModelUnavailableError) as err:
        models.load_lm("no-such-org/no-such-model")
    message = str(err.value)
    assert models.EMBEDDED in message and "load_lm()" in message and "HF_HUB_OFFLINE" in message


def test_local_hf_folder_goes_through_the_same_path(tmp_path, lm):
    """The hub code path, tested offline: a tiny random Llama saved in Hugging Face format."""
    from transformers import LlamaConfig, LlamaForCausalLM
    config = LlamaConfig(vocab_size=lm.cfg.d_vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    lm.tokenizer.save_pretrained(tmp_path)
    small = models.load_lm(str(tmp_path))
    assert small.cfg.n_layers == 2
    _, cache = small.run_with_cache(small.to_tokens("hello world"))
    assert cache["blocks.1.hook_resid_post"].shape[-1] == 32
    kwargs = dict(max_new_tokens=8, do_sample=False, verbose=False)
    cached = small.generate("hello", use_past_kv_cache=True, **kwargs)
    assert cached == small.generate("hello", use_past_kv_cache=False, **kwargs)


def test_missing_model_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(models.ModelUnavailableError, match="--no-deps"):
        models.embedded_gguf_path()


def test_tiny_transformer_has_hooks_and_trains():
    tiny = models.tiny_transformer(n_layers=2, d_model=32, n_heads=4, d_vocab=20, n_ctx=10, device="cpu")
    tokens = torch.randint(0, 20, (3, 10))
    logits, cache = tiny.run_with_cache(tokens)
    assert logits.shape == (3, 10, 20) and cache["blocks.1.attn.hook_pattern"].shape == (3, 4, 10, 10)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 20), tokens.reshape(-1))
    loss.backward()
    assert all(p.grad is not None for p in tiny.parameters() if p.requires_grad)


def test_device_map_auto_goes_through_accelerate_and_gives_the_same_logits(tmp_path):
    """``device_map="auto"`` (accelerate) is the path for models larger than one GPU; here, on the
    host only, it must give the model that the plain load gives."""
    import torch

    from utils.models import load_lm, random_model_folder
    folder = str(random_model_folder("qwen2", tmp_path / "qwen2"))
    plain, spread = load_lm(folder, device="cpu"), load_lm(folder, device="cpu", device_map="auto")
    tokens = plain.to_tokens("The capital of France is")
    with torch.no_grad():
        assert torch.allclose(plain(tokens), spread(tokens), atol=1e-5)


def test_hub_models_on_a_gpu_get_the_dtype_that_fits():
    import torch

    from utils.models import dtype_for_size
    assert dtype_for_size(500_000_000, free_gb=14.0, half=torch.float16) == torch.float32    # 0.5B on a T4: 2 GB
    assert dtype_for_size(2_600_000_000, free_gb=14.0, half=torch.float16) == torch.float16  # 2.6B on a T4: 10 GB
    assert dtype_for_size(2_600_000_000, free_gb=75.0, half=torch.bfloat16) == torch.float32  # on an 80 GB card

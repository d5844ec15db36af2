"""What a checkpoint is, from its files alone (no torch import): its head and where its
transformer lives.

A model is what its checkpoint says it is. The first class of ``architectures`` in its
config.json decides the objective:

- ``causal``: a next-token head (``…ForCausalLM``, ``…LMHeadModel``);
- ``masked``: a masked-LM head (``…ForMaskedLM``);
- ``none``: a bare model (``BertModel``, ``GPTNeoXModel``, …, or no ``architectures`` at all):
  hidden states only, no head, no loss.

Any other head (classification, question answering, …) is refused by name: its hidden states
could be extracted as a bare model, which the config says with ``objective: none``.
A sentence-transformers directory (``modules.json``) is a bare model whose transformer lives in
the folder its ``Transformer`` module names (usually the directory itself).
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from repgeom.activations.architectures import ARCHITECTURES, head_objective
from repgeom.activations.size import ModelSize, safetensors_header, safetensors_params
from repgeom.steps import last_checkpoint, order_checkpoints, parse_label

OBJECTIVES = ("causal", "masked", "none")


def declared_objective(architectures: Sequence[str] | None) -> str:
    """The objective a config.json's ``architectures`` declares ('none' when it lists none):
    its first class name's (:func:`repgeom.activations.architectures.head_objective`)."""
    if not architectures:
        return "none"
    return head_objective(architectures[0])


def transformer_subfolder(modules: Sequence[Mapping[str, Any]] | None) -> str:
    """The folder of a sentence-transformers directory that holds its transformer ('' = itself)."""
    for module in modules or []:
        if str(module.get("type", "")).endswith("models.Transformer"):
            return str(module.get("path") or "")
    return ""


def _read_json(path: Path | None) -> Any:
    if path is None or not path.is_file():
        return None
    return json.loads(path.read_text())


def adapter_message(adapter_config: Path) -> str:
    """Why a PEFT (LoRA, …) adapter directory is not a checkpoint, and how to make it one."""
    try:
        base = _read_json(adapter_config).get("base_model_name_or_path")
    except (ValueError, UnicodeDecodeError, AttributeError):
        base = None
    of = f"of {base!r}" if base else "(its adapter_config.json names no base model)"
    return (
        f"{adapter_config.parent} is a PEFT adapter {of}, not a model: it holds the adapter's "
        "weights only. Merge it into its base model and save the result: model = "
        "PeftModel.from_pretrained(base, adapter_dir).merge_and_unload(); "
        "model.save_pretrained(out) (and the tokenizer), then point the config at out"
    )


def _scan(root: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """The checkpoint subdirectories of a directory (those with a config.json) and the links
    among them: a symlink to a sibling checkpoint (``checkpoint-best -> checkpoint-50``) or to
    the directory itself is that checkpoint, not another one: label -> the label it links to."""
    subdirs = {p.name: p for p in sorted(root.iterdir()) if (p / "config.json").is_file()}
    real = {p.resolve(): k for k, p in subdirs.items() if not p.is_symlink()}
    if (root / "config.json").is_file():
        real.setdefault(root.resolve(), "final")
    links = {}
    for label, p in list(subdirs.items()):
        target = real.get(p.resolve()) if p.is_symlink() else None
        if target is not None and target != label:
            links[label] = target
            del subdirs[label]
    return subdirs, links


def local_checkpoints(path: str | Path) -> dict[str, Path]:
    """Checkpoints of a local directory: one per subdirectory with a config.json, and the
    directory itself ('final') when it holds one. Beside a model of its own (a Trainer's
    output_dir), only subdirectories whose names are step labels count (a
    sentence-transformers directory keeps its modules in subdirectories with a config too).
    A symlink to another checkpoint of the directory is skipped (:func:`checkpoint_links`).
    A PEFT adapter directory (or one of adapters) is refused, naming its base model."""
    root = Path(path)
    subdirs, _ = _scan(root)
    if (root / "config.json").is_file():
        numbered = {k: v for k, v in subdirs.items() if parse_label(k)[0] is not None}
        return {**numbered, "final": root}
    if not subdirs:
        adapters = [root / "adapter_config.json"] + sorted(root.glob("*/adapter_config.json"))
        adapter = next((a for a in adapters if a.is_file()), None)
        if adapter is not None:
            raise FileNotFoundError(adapter_message(adapter))
        raise FileNotFoundError(
            f"{root} holds no checkpoint: expected config.json in it or in its subdirectories"
        )
    return subdirs


def checkpoint_links(path: str | Path) -> dict[str, str]:
    """Symlinks of a local directory to one of its own checkpoints (``checkpoint-best`` ->
    ``checkpoint-50``), which :func:`local_checkpoints` skips: label -> the label it links to."""
    root = Path(path)
    return _scan(root)[1] if root.is_dir() else {}


def trainer_state_step(directory: str | Path) -> int | None:
    """The ``global_step`` a Hugging Face Trainer wrote in a checkpoint's trainer_state.json,
    or None when there is none (or it cannot be read)."""
    try:
        state = _read_json(Path(directory) / "trainer_state.json")
    except (ValueError, UnicodeDecodeError, OSError):
        return None
    step = state.get("global_step") if isinstance(state, dict) else None
    return step if isinstance(step, int) and not isinstance(step, bool) and step >= 0 else None


def checkpoint_file(model: Mapping[str, Any], step: str, name: str) -> Path | None:
    """A file of one checkpoint of a hub (from the HF cache) or local model, or None if absent."""
    if model["source"] == "local":
        try:
            root = local_checkpoints(model["path"]).get(step)
        except (OSError, FileNotFoundError):
            return None
        return None if root is None else Path(root) / name
    if model["source"] == "hub":
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(model["id"], name, revision=step)
        return Path(hit) if isinstance(hit, str) else None
    return None


def checkpoint_config(model: Mapping[str, Any], step: str) -> dict[str, Any] | None:
    """config.json of one checkpoint of a hub or local model (its transformer's, for a
    sentence-transformers directory), or None when it is not on disk."""
    sub = transformer_subfolder(_read_json(checkpoint_file(model, step, "modules.json")))
    name = f"{sub}/config.json" if sub else "config.json"
    try:
        return _read_json(checkpoint_file(model, step, name))
    except ValueError:
        return None


def checkpoint_labels(model: Mapping[str, Any]) -> Sequence[str] | Mapping[str, int | None]:
    """The checkpoint labels a hub or local model's config names, as given (a mapping gives
    their steps): its revisions, its ``steps``, else its directory's checkpoints. A local
    label without a step in its name takes the ``global_step`` of its trainer_state.json."""
    if model["source"] == "hub":
        return model["revisions"]
    steps = model.get("steps")
    if isinstance(steps, Mapping) and steps:
        return steps
    try:
        found = local_checkpoints(model["path"])
    except OSError:
        if steps:  # listed: planned as listed (a missing directory is reported apart)
            return steps
        raise
    labels = list(steps or found)
    return {
        label: (
            trainer_state_step(found[label])
            if parse_label(label)[0] is None and label in found
            else None
        )
        for label in labels
    }


def planning_step(model: Mapping[str, Any]) -> str | None:
    """The checkpoint whose files planning reads: the last of a hub or local model
    (:func:`repgeom.steps.last_checkpoint`; None when a local model's directory is absent)."""
    try:
        ordered, _ = order_checkpoints(checkpoint_labels(model))
    except OSError:
        return None
    return last_checkpoint(ordered).label if ordered else None


def model_objective(model: Mapping[str, Any]) -> str | None:
    """The objective a model's jobs load it with, or None when it cannot be known yet (a hub
    revision not in the cache, in a dry run). Raises ValueError for an unsupported head."""
    if model["source"] == "train":
        return ARCHITECTURES[model["architecture"]][2]
    if model.get("objective", "auto") == "none":
        return "none"
    step = planning_step(model)
    cfg = None if step is None else checkpoint_config(model, step)
    return None if cfg is None else declared_objective(cfg.get("architectures"))


def weight_files(model: Mapping[str, Any], step: str) -> list[Path] | None:
    """The safetensors files of one checkpoint on disk (one, or the shards its index names),
    or None when it has none complete (no safetensors weights, a shard missing)."""
    sub = transformer_subfolder(_read_json(checkpoint_file(model, step, "modules.json")))
    prefix = f"{sub}/" if sub else ""
    single = checkpoint_file(model, step, f"{prefix}model.safetensors")
    if single is not None and single.is_file():
        return [single]
    index = _read_json(checkpoint_file(model, step, f"{prefix}model.safetensors.index.json"))
    shards = sorted(set((index or {}).get("weight_map", {}).values()))
    files = [checkpoint_file(model, step, f"{prefix}{s}") for s in shards]
    if not files or any(f is None or not f.is_file() for f in files):
        return None
    return [f for f in files if f is not None]


def checkpoint_problem(model: Mapping[str, Any], step: str) -> str | None:
    """What makes a local or cached checkpoint unreadable, read from its config.json and weight
    headers only (cheap; a truncated file included), or None when nothing is found wrong."""
    sub = transformer_subfolder(_read_json(checkpoint_file(model, step, "modules.json")))
    prefix = f"{sub}/" if sub else ""
    config = checkpoint_file(model, step, f"{prefix}config.json")
    if config is None or not config.is_file():
        return f"{config or prefix + 'config.json'} is missing"
    try:
        if not isinstance(json.loads(config.read_text()), dict):
            return f"{config} is not a JSON object"
    except (ValueError, UnicodeDecodeError) as err:
        return f"{config} cannot be read: {err}"
    try:
        files = weight_files(model, step)
    except (ValueError, UnicodeDecodeError) as err:
        return f"the safetensors index of {config.parent} cannot be read: {err}"
    for path in files or []:
        try:
            safetensors_header(path)
        except ValueError as err:
            return f"{path} cannot be read: {err}"
    index = checkpoint_file(model, step, f"{prefix}model.safetensors.index.json")
    if files is None and index is not None and index.is_file():
        shards = sorted(set(_read_json(index).get("weight_map", {}).values()))
        absent = [s for s in shards if not (index.parent / s).is_file()]
        return f"{index} names shards that are not there: {absent or 'none at all'}"
    if files is None:
        binary = checkpoint_file(model, step, f"{prefix}pytorch_model.bin")
        if binary is not None and binary.is_file() and not zipfile.is_zipfile(binary):
            return f"{binary} cannot be read: not a complete torch checkpoint (zip archive)"
    return None


def checkpoint_size(model: Mapping[str, Any], step: str) -> Any:
    """The :class:`ModelSize` of one checkpoint whose config.json and
    safetensors weights are on disk (read from their headers), else None."""
    cfg = checkpoint_config(model, step)
    files = None if cfg is None else weight_files(model, step)
    if files is None:
        return None
    try:
        counted = safetensors_params(files)
    except ValueError:
        return None
    if counted is None:
        return None
    try:
        size = ModelSize.from_config(cfg, counted[0])
    except KeyError:
        return None
    return dataclasses.replace(size, saved_dtype=counted[1])  # what is on disk


# --- context and vocabulary, from config.json (checked against the tokenizer at plan time) ---

# config keys of the longest input a family reads, first found wins (GPT-2, GPT-J, BigCode:
# n_positions; most: max_position_embeddings; MPT: max_seq_len; old GPT-2: n_ctx; ChatGLM:
# seq_length)
CONTEXT_KEYS = (
    "n_positions",
    "max_position_embeddings",
    "max_seq_len",
    "n_ctx",
    "seq_length",
    "max_sequence_length",
)
# families whose position ids start after the padding id (RoBERTa: 514 = 512 + padding_idx 1 + 1)
PADDING_OFFSET_TYPES = frozenset(
    {
        "roberta",
        "xlm-roberta",
        "xlm-roberta-xl",
        "camembert",
        "roberta-prelayernorm",
        "data2vec-text",
        "mpnet",
        "longformer",
        "ibert",
        "luke",
        "mluke",
    }
)
# the context of the architectures the workflow trains when their config does not set it
TRAINED_CONTEXT = {
    "gpt_neox": ("max_position_embeddings", 2048),
    "gpt2": ("n_positions", 1024),
    "llama": ("max_position_embeddings", 2048),
    "phi3": ("max_position_embeddings", 4096),
    "qwen2": ("max_position_embeddings", 32768),
    "bert": ("max_position_embeddings", 512),
    "roberta": ("max_position_embeddings", 512),
}


def model_context(config: Mapping[str, Any]) -> tuple[int, str] | None:
    """(positions a model reads, how its config says it) from a config.json (or a trained
    model's config), or None when it names no limit (relative or ALiBi positions)."""
    for key in CONTEXT_KEYS:
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            break
    else:
        return None
    if config.get("model_type") in PADDING_OFFSET_TYPES:
        pad = config.get("pad_token_id")
        pad = 1 if pad is None else int(pad)
        return value - pad - 1, f"{key} {value} less padding_idx {pad} + 1"
    return value, f"{key} {value}"


def trained_model_config(model: Mapping[str, Any]) -> dict[str, Any]:
    """What a model the workflow trains has in its config.json, as far as the config says it
    before training: its architecture's context default and the config's own keys (its
    vocab_size is the tokenizer's unless the config sets one)."""
    arch = model["architecture"]
    cfg = {"model_type": arch, **(model.get("config") or {})}
    if not any(k in cfg for k in CONTEXT_KEYS):
        key, default = TRAINED_CONTEXT[arch]
        cfg[key] = default
    if arch == "roberta":
        cfg.setdefault("pad_token_id", 1)  # build_model: the trained tokenizer's <|pad|> is 1
    return cfg


def tokenizer_size(file: Any) -> int | None:
    """Rows of embedding a tokenizer needs (its largest token id + 1, added tokens included),
    read from its files without loading it: tokenizer.json, else vocab.json (+
    added_tokens.json), else vocab.txt. ``file(name)`` is the path of one of its files or None.
    None when none is there (a sentencepiece model only, a hub revision not in the cache)."""

    def read(name: str) -> Any:
        path = file(name)
        try:
            return _read_json(None if path is None else Path(path))
        except (ValueError, UnicodeDecodeError):
            return None

    def added() -> list[int]:
        extra = read("added_tokens.json")
        return [int(i) for i in extra.values()] if isinstance(extra, dict) else []

    tok = read("tokenizer.json")
    if isinstance(tok, dict):
        vocab = (tok.get("model") or {}).get("vocab")
        ids = [int(t["id"]) for t in tok.get("added_tokens") or [] if "id" in t]
        if isinstance(vocab, dict):
            ids += [int(i) for i in vocab.values()]
        elif isinstance(vocab, list):  # Unigram: [piece, score] in id order
            ids.append(len(vocab) - 1)
        return max(ids) + 1 if ids else None
    vocab = read("vocab.json")
    if isinstance(vocab, dict) and vocab:
        return max([int(i) for i in vocab.values()] + added()) + 1
    path = file("vocab.txt")
    if path is not None and Path(path).is_file():
        n = len(Path(path).read_text(encoding="utf-8").splitlines())
        return max([n - 1, *added()]) + 1 if n else None
    return None


def checkpoint_tokenizer_size(model: Mapping[str, Any], step: str) -> int | None:
    """:func:`tokenizer_size` of the tokenizer saved with one checkpoint of a local or cached
    hub model (beside its config, or in a sentence-transformers transformer folder)."""
    sub = transformer_subfolder(_read_json(checkpoint_file(model, step, "modules.json")))
    for prefix in ("", f"{sub}/") if sub else ("",):
        size = tokenizer_size(lambda name, p=prefix: checkpoint_file(model, step, p + name))
        if size is not None:
            return size
    return None

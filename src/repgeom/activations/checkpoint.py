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

from repgeom.activations.size import ModelSize, safetensors_header, safetensors_params
from repgeom.steps import order_checkpoints, parse_label

OBJECTIVES = ("causal", "masked", "none")

# architectures the workflow trains: name -> (config class, model-with-head class, objective)
ARCHITECTURES: dict[str, tuple[str, str, str]] = {
    "gpt_neox": ("GPTNeoXConfig", "GPTNeoXForCausalLM", "causal"),
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", "causal"),
    "llama": ("LlamaConfig", "LlamaForCausalLM", "causal"),
    "phi3": ("Phi3Config", "Phi3ForCausalLM", "causal"),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", "causal"),
    "bert": ("BertConfig", "BertForMaskedLM", "masked"),
    "roberta": ("RobertaConfig", "RobertaForMaskedLM", "masked"),
}


def head_objective(class_name: str) -> str:
    """'causal', 'masked' or 'none' from a transformers model class name; ValueError otherwise."""
    if class_name.endswith(("ForCausalLM", "LMHeadModel")):
        return "causal"
    if class_name.endswith("ForMaskedLM"):
        return "masked"
    if class_name.endswith("Model") and "For" not in class_name:
        return "none"
    raise ValueError(
        f"{class_name} has a head repgeom does not use (it reads causal LMs, masked LMs and "
        "bare models); to extract its hidden states as a bare model set the model's "
        "'objective: none' in the config"
    )


def declared_objective(architectures: Sequence[str] | None) -> str:
    """The objective a config.json's ``architectures`` declares ('none' when it lists none)."""
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


def local_checkpoints(path: str | Path) -> dict[str, Path]:
    """Checkpoints of a local directory: one per subdirectory with a config.json, and the
    directory itself ('final') when it holds one. Beside a model of its own (a Trainer's
    output_dir), only subdirectories whose names are step labels count (a
    sentence-transformers directory keeps its modules in subdirectories with a config too)."""
    root = Path(path)
    subdirs = {p.name: p for p in sorted(root.iterdir()) if (p / "config.json").is_file()}
    if (root / "config.json").is_file():
        numbered = {k: v for k, v in subdirs.items() if parse_label(k)[0] is not None}
        return {**numbered, "final": root}
    if not subdirs:
        raise FileNotFoundError(
            f"{root} holds no checkpoint: expected config.json in it or in its subdirectories"
        )
    return subdirs


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
    their steps): its revisions, its ``steps``, else its directory's checkpoints."""
    if model["source"] == "hub":
        return model["revisions"]
    if model.get("steps"):
        return model["steps"]
    return list(local_checkpoints(model["path"]))


def planning_step(model: Mapping[str, Any]) -> str | None:
    """The checkpoint whose files planning reads: the last by training step of a hub or local
    model (None when a local model's directory is absent)."""
    try:
        ordered, _ = order_checkpoints(checkpoint_labels(model))
    except OSError:
        return None
    return ordered[-1].label if ordered else None


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

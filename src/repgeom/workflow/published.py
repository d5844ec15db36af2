"""Published dimensions of the hub models the paper configs read, for sizing a run whose
checkpoints are not on this machine yet (each repository's config.json, transcribed)."""

from __future__ import annotations

from typing import Any

PYTHIA = {"vocab_size": 50304, "rotary_pct": 0.25, "tie_word_embeddings": False}
PYTHIA_DIMS = {
    "14m": (128, 6, 4),
    "31m": (256, 6, 8),
    "70m": (512, 6, 8),
    "160m": (768, 12, 12),
    "410m": (1024, 24, 16),
    "1b": (2048, 16, 8),
    "1.4b": (2048, 24, 16),
}
PHI3 = {
    "vocab_size": 32064,
    "hidden_size": 3072,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "intermediate_size": 8192,
}
# hub id -> (config class, model class, config values that size the model, saved dtype)
PUBLISHED: dict[str, tuple[str, str, dict[str, Any], str]] = {
    **{
        f"EleutherAI/pythia-{name}{suffix}": (
            "GPTNeoXConfig",
            "GPTNeoXForCausalLM",
            {
                **PYTHIA,
                "hidden_size": d,
                "num_hidden_layers": n_layers,
                "num_attention_heads": n_heads,
                "intermediate_size": 4 * d,
            },
            "float16",
        )
        for name, (d, n_layers, n_heads) in PYTHIA_DIMS.items()
        for suffix in ("", "-deduped")
    },
    "google-bert/bert-base-uncased": ("BertConfig", "BertForMaskedLM", {}, "float32"),
    "google-bert/bert-base-multilingual-cased": (
        "BertConfig",
        "BertForMaskedLM",
        {"vocab_size": 119547},
        "float32",
    ),
    "FacebookAI/roberta-base": (
        "RobertaConfig",
        "RobertaForMaskedLM",
        {"vocab_size": 50265, "max_position_embeddings": 514, "type_vocab_size": 1},
        "float32",
    ),
    "openai-community/gpt2": ("GPT2Config", "GPT2LMHeadModel", {}, "float32"),
    "microsoft/Phi-3.5-mini-instruct": ("Phi3Config", "Phi3ForCausalLM", PHI3, "bfloat16"),
    "microsoft/Phi-3-mini-4k-instruct": ("Phi3Config", "Phi3ForCausalLM", PHI3, "bfloat16"),
}

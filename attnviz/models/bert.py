"""A BERT encoder in plain torch, with transformers' ``BertModel`` names and eager arithmetic (MiniLM and other BERT
directories load into it; see :mod:`attnviz.models.encoder_parts` for why).

Takes the configs it computes exactly as transformers does: absolute positions, GELU (erf), no decoder or cross-
attention (:func:`fits`); others load with transformers.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from attnviz.models.encoder_parts import (  # noqa: F401  (eager_attention_forward: the capture finds it here)
    Config,
    Embedding,
    Encoder,
    EncoderOutput,
    LayerNorm,
    Linear,
    attend,
    eager_attention_forward,
    padding_mask,
)

DEFAULTS = dict(type_vocab_size=2, layer_norm_eps=1e-12, pad_token_id=0, position_embedding_type="absolute",
                hidden_act="gelu", is_decoder=False, add_cross_attention=False)
IGNORED = ("pooler.", "embeddings.position_ids", "embeddings.token_type_ids", "cls.", "classifier.")
"""Checkpoint keys the encoder does not use (the pooler and the task heads act after the last layer)."""


def fits(config: Mapping[str, Any]) -> bool:
    """Whether a BERT ``config.json`` is one this module computes exactly as transformers does."""
    c = {**DEFAULTS, **config}
    return (c.get("model_type") == "bert" and c["position_embedding_type"] == "absolute" and c["hidden_act"] == "gelu"
            and not c["is_decoder"] and not c["add_cross_attention"]
            and c["hidden_size"] % c["num_attention_heads"] == 0)


class BertEmbeddings(nn.Module):
    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.word_embeddings = Embedding(cfg.vocab_size, cfg.hidden_size, padding_idx=cfg.pad_token_id)
        self.position_embeddings = Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.token_type_embeddings = Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.LayerNorm = LayerNorm(cfg.hidden_size, cfg.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor | None, token_type_ids: torch.Tensor | None,
                position_ids: torch.Tensor | None, inputs_embeds: torch.Tensor | None) -> torch.Tensor:
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)
        batch, n = inputs_embeds.shape[:2]
        if position_ids is None:
            position_ids = torch.arange(n, dtype=torch.long)[None]
        if token_type_ids is None:
            token_type_ids = torch.zeros((batch, n), dtype=torch.long)
        x = inputs_embeds + self.token_type_embeddings(token_type_ids)
        return self.LayerNorm(x + self.position_embeddings(position_ids))


class BertSelfAttention(nn.Module):
    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.config = cfg
        self.num_attention_heads = cfg.num_attention_heads
        self.attention_head_size = cfg.hidden_size // cfg.num_attention_heads
        self.scaling = self.attention_head_size ** -0.5
        self.query = Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = Linear(cfg.hidden_size, cfg.hidden_size)
        self.value = Linear(cfg.hidden_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None,
                **kwargs: object) -> tuple[torch.Tensor, torch.Tensor | None]:
        return attend(self, x, (self.query, self.key, self.value), self.attention_head_size, mask, **kwargs)


class BertSelfOutput(nn.Module):
    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.dense = Linear(cfg.hidden_size, cfg.hidden_size)
        self.LayerNorm = LayerNorm(cfg.hidden_size, cfg.layer_norm_eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class BertAttention(nn.Module):
    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.self = BertSelfAttention(cfg)
        self.output = BertSelfOutput(cfg)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None,
                **kwargs: object) -> tuple[torch.Tensor, torch.Tensor | None]:
        a, weights = self.self(x, mask, **kwargs)
        return self.output(a, x), weights


class BertIntermediate(nn.Module):
    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.dense = Linear(cfg.hidden_size, cfg.intermediate_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.gelu(self.dense(x))


class BertOutput(BertSelfOutput):
    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        self.dense = Linear(cfg.intermediate_size, cfg.hidden_size)


class BertLayer(nn.Module):
    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.attention = BertAttention(cfg)
        self.intermediate = BertIntermediate(cfg)
        self.output = BertOutput(cfg)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None,
                **kwargs: object) -> tuple[torch.Tensor, torch.Tensor | None]:
        a, weights = self.attention(x, mask, **kwargs)
        return self.output(self.intermediate(a), a), weights


class BertEncoder(nn.Module):
    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(cfg) for _ in range(cfg.num_hidden_layers))


class BertModel(Encoder):
    """transformers' ``BertModel`` (without its pooler) for a config that :func:`fits`; made on the meta device,
    its weights come from :func:`build`."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        self.config = Config(config, DEFAULTS)
        self.embeddings = BertEmbeddings(self.config)
        self.encoder = BertEncoder(self.config)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, position_ids: torch.Tensor | None = None,
                inputs_embeds: torch.Tensor | None = None, output_attentions: bool = False,
                output_hidden_states: bool = False, **kwargs: object) -> EncoderOutput:
        """As ``BertModel.forward``; ``kwargs`` go to every attention call (the capture's run)."""
        x = self.embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)
        return self.run_layers(x, padding_mask(attention_mask, x.shape[1]), output_attentions, output_hidden_states,
                               **kwargs)


def build(config: Mapping[str, Any], state: Mapping[str, torch.Tensor]) -> BertModel:
    """A :class:`BertModel` of ``config`` holding ``state`` (a checkpoint's tensors, a ``bert.`` prefix allowed),
    in eval mode.

    Raises:
        ValueError: the weights do not fit the config.
    """
    model = BertModel(config)  # on the meta device: every tensor comes from ``state``
    model.load_weights({k.removeprefix("bert."): v for k, v in state.items()}, IGNORED)
    return model.eval()

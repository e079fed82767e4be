"""SASRec (Kang & McAuley, ICDM 2018) as the paper's code builds it, with a full-softmax loss.

A faithful port of the reference implementation (TensorFlow, and its PyTorch port
pmixer/SASRec.pytorch): item embeddings scaled by sqrt(d) plus learned absolute positions,
dropout, padded positions zeroed; per block a layer-normed query attends causally over the
un-normed sequence with the residual taken from the normed query, then a layer-normed
point-wise feed-forward (ReLU) with its own residual; a final layer norm. Output scores are
dot products with the same (tied) item embeddings. The one change, as the issue asks, is the
loss: cross-entropy over all items instead of one sampled negative per position.
"""

from __future__ import annotations

import math

import torch
from torch import nn

#: Additive mask value: large but finite, so an all-padding row gives no NaN.
NEG = -1e9


def attention_mask(items: torch.Tensor) -> torch.Tensor:
    """(B, 1, L, L) additive mask: causal, and padded keys (item 0) hidden."""
    length = items.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool, device=items.device).tril()
    allowed = causal[None, :, :] & (items != 0)[:, None, :]
    return torch.where(allowed, 0.0, NEG)[:, None, :, :]


class MultiHeadAttention(nn.Module):
    """Plain scaled dot-product attention with an additive mask (exports to any ONNX opset)."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.q, self.k, self.v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, length, dim = query.shape
        h, dh = self.heads, dim // self.heads

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.view(b, length, h, dh).transpose(1, 2)

        q, k, v = split(self.q(query)), split(self.k(keys)), split(self.v(keys))
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dh) + mask, dim=-1)
        mixed = (self.drop(weights) @ v).transpose(1, 2).reshape(b, length, dim)
        return self.out(mixed)


class PointWiseFeedForward(nn.Module):
    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, dim), nn.Dropout(dropout), nn.ReLU(), nn.Linear(dim, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class SASRec(nn.Module):
    """``states(items)`` gives one vector per position; ``item_matrix()`` the tied outputs."""

    def __init__(
        self, n_items: int, dim: int = 64, blocks: int = 2, heads: int = 1,
        dropout: float = 0.2, max_len: int = 50,
    ) -> None:
        super().__init__()
        self.dim, self.max_len = dim, max_len
        self.item_emb = nn.Embedding(n_items + 1, dim, padding_idx=0)
        self.pos_emb = nn.Embedding(max_len, dim)
        self.emb_drop = nn.Dropout(dropout)
        self.attn_norms = nn.ModuleList(nn.LayerNorm(dim, eps=1e-8) for _ in range(blocks))
        self.attns = nn.ModuleList(MultiHeadAttention(dim, heads, dropout) for _ in range(blocks))
        self.ffn_norms = nn.ModuleList(nn.LayerNorm(dim, eps=1e-8) for _ in range(blocks))
        self.ffns = nn.ModuleList(PointWiseFeedForward(dim, dropout) for _ in range(blocks))
        self.last_norm = nn.LayerNorm(dim, eps=1e-8)
        for name, param in self.named_parameters():
            if param.dim() > 1 and "norm" not in name:
                nn.init.xavier_normal_(param)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def states(self, items: torch.Tensor) -> torch.Tensor:
        length = items.shape[1]
        keep = (items != 0).unsqueeze(-1).to(self.item_emb.weight.dtype)
        x = self.item_emb(items) * self.dim**0.5
        positions = torch.arange(self.max_len - length, self.max_len, device=items.device)
        x = self.emb_drop(x + self.pos_emb(positions)[None]) * keep
        mask = attention_mask(items)
        for attn_norm, attn, ffn_norm, ffn in zip(
            self.attn_norms, self.attns, self.ffn_norms, self.ffns, strict=True
        ):
            q = attn_norm(x)
            x = q + attn(q, x, mask)
            x = ffn(ffn_norm(x)) * keep
        return self.last_norm(x)

    def item_matrix(self) -> torch.Tensor:
        return self.item_emb.weight

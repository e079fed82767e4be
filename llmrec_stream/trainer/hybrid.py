"""The project's ranking model: a two-tower model over ids and encoder text vectors.

Item tower: ``r_i = id_emb[i] + P · text_i`` (``text_i`` the ONNX encoder's 384-d vector of the
item's text; no text, no ``P``). User tower: a causal transformer over the recent items'
``r`` plus learned recency positions, pre-layer-norm blocks with gated residuals (LiGR-style,
as in eSASRec), read at the newest position; with ``pool`` a linear map of the mean of the
history's ``r`` is added, the user vector matrix factorisation would give (a bag of items,
which the attention blocks only approximate on short histories). Score: ``<user, r_i>`` over
the whole catalog, trained with full-softmax cross-entropy. Everything the user tower needs at
serving time is what the worker keeps: the recent item ids (newest first) and the items' text
vectors.
"""

from __future__ import annotations

import torch
from torch import nn

from llmrec_stream.trainer.sasrec import MultiHeadAttention, attention_mask


class GatedBlock(nn.Module):
    """Pre-LN attention and feed-forward, each residual scaled by a learned sigmoid gate."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.attn_norm, self.ffn_norm = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, heads, dropout)
        self.attn_gate, self.ffn_gate = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim)
        )
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.attn_norm(x)
        x = x + torch.sigmoid(self.attn_gate(h)) * self.drop(self.attn(h, h, mask))
        h = self.ffn_norm(x)
        return x + torch.sigmoid(self.ffn_gate(h)) * self.drop(self.ffn(h))


class HybridSeq(nn.Module):
    """``states(items, text)`` gives one vector per position; ``item_matrix()`` the item tower.

    ``item_text`` is the (n_items + 1, T) text matrix (row 0 = padding) or None for id-only
    catalogs; training reads it from this buffer, the ONNX user tower takes it as an input.
    """

    def __init__(
        self, n_items: int, item_text: torch.Tensor | None = None, dim: int = 64,
        blocks: int = 2, heads: int = 2, dropout: float = 0.2, max_len: int = 50,
        id_dropout: float = 0.0, pool: bool = False,
    ) -> None:
        super().__init__()
        self.dim, self.max_len, self.id_dropout = dim, max_len, id_dropout
        self.item_emb = nn.Embedding(n_items + 1, dim, padding_idx=0)
        nn.init.normal_(self.item_emb.weight, std=dim**-0.5)
        self.text_dim = 0 if item_text is None else int(item_text.shape[1])
        self.text_proj = nn.Linear(self.text_dim, dim) if self.text_dim else None
        self.item_text: torch.Tensor
        self.register_buffer(
            "item_text", torch.zeros(n_items + 1, self.text_dim) if item_text is None
            else item_text.float().clone()
        )
        self.pos_emb = nn.Embedding(max_len, dim)
        nn.init.normal_(self.pos_emb.weight, std=0.02)
        self.emb_norm = nn.LayerNorm(dim)
        self.emb_drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(GatedBlock(dim, heads, dropout) for _ in range(blocks))
        self.last_norm = nn.LayerNorm(dim)
        self.pool = nn.Linear(dim, dim) if pool else None
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def represent(self, items: torch.Tensor, text: torch.Tensor | None) -> torch.Tensor:
        """Item tower for the given ids (``text``: their text vectors, same leading shape)."""
        r = self.item_emb(items)
        if self.training and self.id_dropout > 0 and self.text_proj is not None:
            # hide some ids so the tower learns to stand on text alone (rare and new items)
            keep = torch.rand(items.shape, device=items.device) >= self.id_dropout
            r = r * keep.unsqueeze(-1).to(r.dtype)
        if self.text_proj is not None:
            t = self.item_text[items] if text is None else text
            r = r + self.text_proj(t) * (items != 0).unsqueeze(-1).to(r.dtype)
        return r

    def states(self, items: torch.Tensor, text: torch.Tensor | None = None) -> torch.Tensor:
        length = items.shape[1]
        keep = (items != 0).unsqueeze(-1).to(self.item_emb.weight.dtype)
        positions = length - 1 - torch.arange(length, device=items.device)  # 0 = newest
        r = self.represent(items, text)
        x = self.emb_norm(r + self.pos_emb(positions)[None])
        x = self.emb_drop(x) * keep
        mask = attention_mask(items)
        for block in self.blocks:
            x = block(x, mask) * keep
        x = self.last_norm(x)
        if self.pool is not None:
            # the mean of the history so far, as matrix factorisation sees a user
            mean = torch.cumsum(r * keep, dim=1) / torch.cumsum(keep, dim=1).clamp(min=1.0)
            x = x + self.pool(mean)
        return x

    def item_matrix(self) -> torch.Tensor:
        ids = torch.arange(self.item_emb.num_embeddings, device=self.item_emb.weight.device)
        return self.represent(ids, None)


class UserTower(nn.Module):
    """The exported graph: ``(items, item_text) -> query`` at the newest (last) position."""

    def __init__(self, net: HybridSeq) -> None:
        super().__init__()
        self.net = net

    def forward(self, items: torch.Tensor, item_text: torch.Tensor | None = None) -> torch.Tensor:
        return self.net.states(items, item_text if self.net.text_dim else None)[:, -1]

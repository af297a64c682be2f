"""A character-level nano-GPT small enough for a CPU, trained on the text the project
ships (campaign.weights.corpus).

Architecture (after Karpathy's nanoGPT, reduced): token and position embeddings,
``n_layer`` pre-LayerNorm blocks of causal multi-head self-attention (separate query, key
and value matrices, ``n_embd x n_embd``, no bias, all heads side by side) and an MLP
(``n_embd -> 4 n_embd -> n_embd``, GELU), a final LayerNorm and an output layer tied to
the token embedding; no dropout (the only noise is the mini-batch).  Weights start
i.i.d. ``N(0, init_std^2)`` (the two output projections of each block
``init_std / sqrt(2 n_layer)``), biases at 0, so every matrix's initial spectrum follows
Marchenko-Pastur.

Spectra: for each block l and matrix m in (query, key, value, attn_proj, fc, mlp_proj)
the spectrum ``l{l}.{m}`` (one replica) holds the squared singular values of the weight (eigenvalues
of the smaller of W^T W and W W^T; for the key matrix K this is X = K^T K of the papers).
The primary spectrum for the spacing analysis is ``l0.key``.  There is no analytic
potential here, hence no temperature prediction.

The corpus is split 90/10 into training and validation text; batches are random windows
of ``block_size`` characters of the training text.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import CampaignError
from .models import WeightModel

MATRICES = ("query", "key", "value", "attn_proj", "fc", "mlp_proj")


class _Block(torch.nn.Module):
    def __init__(self, n_embd: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.ln1 = torch.nn.LayerNorm(n_embd)
        self.query = torch.nn.Linear(n_embd, n_embd, bias=False)
        self.key = torch.nn.Linear(n_embd, n_embd, bias=False)
        self.value = torch.nn.Linear(n_embd, n_embd, bias=False)
        self.attn_proj = torch.nn.Linear(n_embd, n_embd)
        self.ln2 = torch.nn.LayerNorm(n_embd)
        self.fc = torch.nn.Linear(n_embd, 4 * n_embd)
        self.mlp_proj = torch.nn.Linear(4 * n_embd, n_embd)

    def forward(self, x):
        b, t, d = x.shape
        h = self.ln1(x)

        def heads(m):
            return m(h).view(b, t, self.n_head, d // self.n_head).transpose(1, 2)

        y = F.scaled_dot_product_attention(heads(self.query), heads(self.key), heads(self.value), is_causal=True)
        x = x + self.attn_proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp_proj(F.gelu(self.fc(self.ln2(x))))


class NanoGPT(WeightModel):
    name = "nanogpt"

    def __init__(self, *, n_layer: int = 2, n_head: int = 4, n_embd: int = 32, block_size: int = 32,
                 init_std: float = 0.02, generator: torch.Generator, dtype=torch.float64, device="cpu"):
        super().__init__()
        from .corpus import TEXT

        if n_embd % n_head:
            raise CampaignError(f"nanogpt: n_embd ({n_embd}) must be a multiple of n_head ({n_head})")
        if n_layer < 1 or block_size < 2:
            raise CampaignError(f"nanogpt: need n_layer >= 1 and block_size >= 2, got {n_layer}, {block_size}")
        self.chars = sorted(set(TEXT))
        index = {c: i for i, c in enumerate(self.chars)}
        data = torch.tensor([index[c] for c in TEXT], dtype=torch.long)
        n_train = int(0.9 * len(data))
        self.register_buffer("train_data", data[:n_train], persistent=False)
        self.register_buffer("val_data", data[n_train:], persistent=False)
        self.block_size, self.n_layer, self.init_std = int(block_size), int(n_layer), float(init_std)
        vocab = len(self.chars)
        self.wte = torch.nn.Embedding(vocab, n_embd)
        self.wpe = torch.nn.Embedding(block_size, n_embd)
        self.blocks = torch.nn.ModuleList(_Block(n_embd, n_head) for _ in range(n_layer))
        self.ln_f = torch.nn.LayerNorm(n_embd)
        self._init_weights(generator)
        self.to(dtype=dtype, device=device)

    @torch.no_grad()
    def _init_weights(self, generator):
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = self.init_std / math.sqrt(2 * self.n_layer) if name.endswith("proj.weight") else self.init_std
                p.copy_(torch.randn(p.shape, generator=generator) * std)
            elif name.endswith("bias"):
                p.zero_()

    def forward(self, idx):
        t = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(t, device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.ln_f(x) @ self.wte.weight.T

    def _windows(self, data, batch_size, generator):
        start = torch.randint(0, len(data) - self.block_size - 1, (batch_size,), generator=generator)
        offs = start[:, None] + torch.arange(self.block_size + 1)
        w = data.cpu()[offs].to(data.device)
        return w[:, :-1], w[:, 1:]

    def sample_batch(self, batch_size: int, generator: torch.Generator):
        return self._windows(self.train_data, batch_size, generator)

    def loss(self, batch, generator: torch.Generator) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)).reshape(1)

    @torch.no_grad()
    def evaluate(self, n_batches: int = 8, batch_size: int = 32) -> dict:
        """Validation loss (nats per character) on fixed windows of the held-out text."""
        gen = torch.Generator().manual_seed(0)
        losses = [float(self.loss(self._windows(self.val_data, batch_size, gen), gen)) for _ in range(n_batches)]
        return {"val_loss": sum(losses) / len(losses), "uniform_loss": math.log(len(self.chars))}

    def _matrix(self, layer: int, name: str) -> torch.Tensor:
        return getattr(self.blocks[layer], name).weight

    @torch.no_grad()
    def spectra(self) -> dict[str, torch.Tensor]:
        out = {}
        for layer in range(self.n_layer):
            for m in MATRICES:
                w = self._matrix(layer, m)
                gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
                out[f"l{layer}.{m}"] = torch.linalg.eigvalsh(gram)[None]
        return out

    def theory(self) -> dict:
        init_mp = {}
        for layer in range(self.n_layer):
            for m in MATRICES:
                n_out, n_in = self._matrix(layer, m).shape
                std = self.init_std / math.sqrt(2 * self.n_layer) if m.endswith("proj") else self.init_std
                n_long = max(n_out, n_in)
                init_mp[f"l{layer}.{m}"] = {"q": min(n_out, n_in) / n_long, "sigma2": std**2 * n_long, "n_long": n_long}
        return {
            "primary": "l0.key",
            # not stationary, spread over decades: unfold each spectrum on its own, in ln lambda
            "unfolding": "local_log",
            "matrix": "squared singular values of each weight matrix (key: eigenvalues of X = K^T K)",
            "init_mp": init_mp,
        }

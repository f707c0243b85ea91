"""CoPE's kernels: the causal gates, their reverse cumulative sum (positions), the
interpolation of the position table, and the fused, query-chunked form of the three
(:class:`_FusedBias`), each a ``torch.autograd.Function`` with its own backward.  The
encoding itself is :mod:`interp.models.positional.cope`.

Dimensions: batch, head_index, query_pos, key_pos, npos (the table's positions), d_head.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

FUSED = True  # False: always the three separate functions (for benchmarks and tests)


def causal_mask(n_q: int, n_k: int, device: torch.device) -> Tensor:
    """[query_pos key_pos] bool, True where key j is visible from query i (queries are the last
    ``n_q`` of the ``n_k`` positions)."""
    q_pos = torch.arange(n_k - n_q, n_k, device=device)
    return torch.arange(n_k, device=device)[None, :] <= q_pos[:, None]


# Three autograd functions with hand-written backward passes: the L x L tensors dominate CoPE's
# cost, and these touch each of them as few times as possible (no masked_fill, flip, slice or
# pad copies; one scatter buffer).  ``generate_vmap_rule``: they also run under torch.func.vmap.


class _CausalGates(torch.autograd.Function):
    """``sigmoid(logits)`` with the future keys (``j > i + offset``) set to exactly zero."""

    generate_vmap_rule = True

    @staticmethod
    def forward(logits: Tensor, offset: int) -> Tensor:  # type: ignore[override]
        return torch.sigmoid(logits).tril_(offset)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # noqa: ANN001
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, grad: Tensor):  # noqa: ANN001, ANN205
        (gates,) = ctx.saved_tensors
        # future gates are 0, so their factor g (1 - g) masks their gradient as well
        return torch.ops.aten.sigmoid_backward(grad, gates), None


class _ReverseCumsum(torch.autograd.Function):
    """``p_ij = sum_{t >= j} g_it`` as ``total - cumsum + g`` (the total is the cumsum's last
    entry), accumulated in float32 at least; its gradient is a plain cumsum."""

    generate_vmap_rule = True

    @staticmethod
    def forward(gates: Tensor) -> Tensor:  # type: ignore[override]
        cum = gates.cumsum(-1, dtype=torch.promote_types(gates.dtype, torch.float32))
        return torch.add(gates, cum[..., -1:]).sub_(cum)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # noqa: ANN001
        ctx.gates_dtype = inputs[0].dtype

    @staticmethod
    def backward(ctx, grad: Tensor):  # noqa: ANN001, ANN205
        return grad.cumsum(-1).to(ctx.gates_dtype)


class _Interpolate(torch.autograd.Function):
    """``scores + z[floor p] + frac(p) (z[floor p + 1] - z[floor p])``: two gathers forward, one
    scatter buffer backward.  ``positions`` lie in ``[0, n_positions - 1]``.  The floor, the
    fraction and the gathered step are extra outputs (not differentiable) saved for backward."""

    generate_vmap_rule = True

    @staticmethod
    def forward(z: Tensor, positions: Tensor, scores: Tensor):  # type: ignore[override]  # noqa: ANN205
        index = positions.detach().long()  # floor, as positions are >= 0
        fraction = torch.frac(positions).to(z.dtype)
        # last step 0 (frac = 0 there); no out= so that vmap (batched trainers) can run it
        step = torch.nn.functional.pad(z.diff(dim=-1), (0, 1))
        delta = step.gather(-1, index)
        out = z.gather(-1, index).addcmul_(fraction, delta)
        out = out.add_(scores) if scores.dtype == out.dtype else scores + out
        return out, index, fraction, delta

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # noqa: ANN001
        z, positions, scores = inputs
        ctx.mark_non_differentiable(*output[1:])
        ctx.set_materialize_grads(False)  # no zero-filled L x L gradients for the extra outputs
        ctx.z_shape = z.shape
        ctx.pos_dtype, ctx.scores_dtype = positions.dtype, scores.dtype
        ctx.save_for_backward(*output[1:])

    @staticmethod
    def backward(ctx, grad: Tensor, *_: Tensor | None):  # noqa: ANN001, ANN205
        index, fraction, delta = ctx.saved_tensors
        grad_in = grad.to(delta.dtype)
        grad_z = grad_pos = None
        if ctx.needs_input_grad[0]:
            upper = grad_in * fraction  # the weight of z[floor p + 1]
            # a spare last slot: z[floor p + 1] exists even where floor p is the last position
            buf = grad_in.new_zeros((*ctx.z_shape[:-1], ctx.z_shape[-1] + 1))
            buf[..., :-1].scatter_add_(-1, index, grad_in - upper)
            buf[..., 1:].scatter_add_(-1, index, upper)
            grad_z = buf[..., :-1]
        if ctx.needs_input_grad[1]:
            grad_pos = (grad_in * delta).to(ctx.pos_dtype)
        grad_scores = grad.to(ctx.scores_dtype) if ctx.needs_input_grad[2] else None
        return grad_z, grad_pos, grad_scores


# Elements of one [batch head chunk key] slab in the fused form: 128K floats (512 KiB, one
# core's L2 cache on the benchmark machine; 64K and 256K measured alike), so the ~10 successive
# passes over a chunk of query rows read it from cache, and small slabs reuse the allocator's
# memory instead of page-faulting a fresh L x L buffer.
CHUNK_ELEMENTS = 1 << 17


def _chunk_positions(logits: Tensor, diagonal: int) -> tuple[Tensor, Tensor]:
    """Gates and (unclamped) positions of a chunk of query rows, as ``_CausalGates`` and
    ``_ReverseCumsum`` compute them (the same operations, bit for bit)."""
    gates = torch.sigmoid(logits).tril_(diagonal)
    cum = gates.cumsum(-1, dtype=torch.promote_types(gates.dtype, torch.float32))
    return gates, torch.add(gates, cum[..., -1:]).sub_(cum)


class _FusedBias(torch.autograd.Function):
    """``scores + interpolate(q E, clamp(reverse_cumsum(causal_sigmoid(logits))))`` in one
    function, query rows in chunks of about ``CHUNK_ELEMENTS`` (every step is independent per
    query row), so the intermediate [batch head chunk key] tensors, ``z = q . E`` included,
    stay in cache.  Nothing L x L is saved: backward recomputes ``z``, gates, positions, floor
    and fraction chunk by chunk from the logits, and turns each chunk's ``dz`` into ``dq`` and
    ``dE`` at once.  ``logits is None``: the gates read ``scores`` (shared keys).  The same
    maths as the three functions above; used when no hook watches the gates or positions.

    ``q`` [batch query_pos head_index d_head] (scaled unless ``nodiv``), ``emb`` [1 d_head
    n_positions] (one table for the layer's heads: ``z`` is one matmul per chunk) or
    [head_index d_head n_positions] (per head: one batched matmul); ``z`` is
    [head_index (batch chunk) n_positions] in memory.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        logits: Tensor | None,
        q: Tensor,
        emb: Tensor,
        scores: Tensor,
        offset: int,
        p_max: int | None,
    ) -> Tensor:
        gate_in = scores if logits is None else logits
        n_q = gate_in.shape[-2]
        out = scores.new_empty(scores.shape, dtype=torch.promote_types(q.dtype, scores.dtype))
        rows = _chunk_rows(gate_in)
        for a in range(0, n_q, rows):
            b = min(a + rows, n_q)
            _, positions = _chunk_positions(gate_in[..., a:b, :], offset + a)
            if p_max is not None:
                positions.clamp_(max=p_max)
            index = positions.long()  # floor, as positions are >= 0
            fraction = torch.frac(positions).to(q.dtype)
            z = _chunk_z(q, emb, a, b)
            value = z.gather(-1, index).addcmul_(fraction, _step(z).gather(-1, index))
            torch.add(value, scores[..., a:b, :], out=out[..., a:b, :])
        return out

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:  # noqa: ANN001
        logits, q, emb, scores, offset, p_max = inputs
        ctx.offset, ctx.p_max, ctx.shared = offset, p_max, logits is None
        ctx.scores_dtype = scores.dtype
        ctx.save_for_backward(scores if logits is None else logits, q, emb)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):  # noqa: ANN001, ANN205
        gate_in, q, emb = ctx.saved_tensors
        need_logits = ctx.needs_input_grad[3] if ctx.shared else ctx.needs_input_grad[0]
        need_q, need_emb = ctx.needs_input_grad[1:3]
        need_z = need_q or need_emb
        grad_scores = grad.to(ctx.scores_dtype) if ctx.needs_input_grad[3] else None
        grad_logits = gate_in.new_empty(gate_in.shape) if need_logits else None
        grad_q = q.new_empty(q.shape) if need_q else None
        n_batch, n_heads = gate_in.shape[:2]
        # dE summed over chunks in float32 at least (one rounding, as a single matmul would)
        acc = torch.promote_types(emb.dtype, torch.float32)
        grad_emb = torch.zeros_like(emb, dtype=acc) if need_emb else None
        n_q = gate_in.shape[-2]
        rows = _chunk_rows(gate_in)
        for a in range(0, n_q, rows):
            b = min(a + rows, n_q)
            gates, positions = _chunk_positions(gate_in[..., a:b, :], ctx.offset + a)
            over = None
            if ctx.p_max is not None:
                over = positions > ctx.p_max
                positions.clamp_(max=ctx.p_max)
            index = positions.long()
            grad_in = grad[..., a:b, :].to(q.dtype)
            if need_z:
                upper = grad_in * torch.frac(positions).to(q.dtype)  # weight of z[floor p + 1]
                # [head_index batch chunk n_positions + 1], a spare last slot: z[floor p + 1]
                # exists even where floor p is the last position
                buf = grad_in.new_zeros((n_heads, n_batch, b - a, emb.shape[-1] + 1))
                view = buf.transpose(0, 1)  # [batch head_index chunk n_positions + 1]
                view[..., :-1].scatter_add_(-1, index, grad_in - upper)
                view[..., 1:].scatter_add_(-1, index, upper)
                grad_z = buf[..., :-1].flatten(1, 2)  # [head_index (batch chunk) n_positions]
                if need_q:
                    grad_qc = _times_table(grad_z, emb.transpose(-1, -2))
                    grad_q[:, a:b] = grad_qc.unflatten(1, (n_batch, b - a)).permute(1, 2, 0, 3)
                if need_emb:
                    _add_table_grad(grad_emb, _chunk_q(q, a, b), grad_z)
            if need_logits:
                z = _chunk_z(q, emb, a, b)
                grad_pos = (grad_in * _step(z).gather(-1, index)).to(positions.dtype)
                if over is not None:
                    grad_pos.masked_fill_(over, 0)
                grad_gates = grad_pos.cumsum(-1).to(gates.dtype)
                # future gates are 0, so their factor g (1 - g) masks their gradient as well
                value = torch.ops.aten.sigmoid_backward(grad_gates, gates)
                if ctx.shared:
                    torch.add(value, grad_scores[..., a:b, :], out=grad_logits[..., a:b, :])
                else:
                    grad_logits[..., a:b, :] = value
        if grad_emb is not None:
            grad_emb = grad_emb.to(emb.dtype)
        if ctx.shared:
            grad_scores = grad_logits if need_logits else grad_scores
            return None, grad_q, grad_emb, grad_scores, None, None
        return grad_logits, grad_q, grad_emb, grad_scores, None, None


def _chunk_q(q: Tensor, a: int, b: int) -> Tensor:
    """Query rows ``a:b`` of q [batch query_pos head_index d_head] as [head_index (batch chunk)
    d_head] (a small copy)."""
    return q[:, a:b].permute(2, 0, 1, 3).flatten(1, 2)


def _times_table(x: Tensor, table: Tensor) -> Tensor:
    """``x`` [head_index rows d] times a table [head_index d n] (per head: one batched matmul)
    or [1 d n] (shared by the heads: one matmul over all heads' rows) -> [head_index rows n]."""
    if table.shape[0] == x.shape[0]:
        return torch.bmm(x, table)
    return torch.mm(x.reshape(-1, x.shape[-1]), table[0]).view(*x.shape[:2], table.shape[-1])


def _add_table_grad(grad_emb: Tensor, q_chunk: Tensor, grad_z: Tensor) -> None:
    """``grad_emb += q_chunk^T grad_z``: q_chunk [head_index rows d_head], grad_z
    [head_index rows n_positions]; a table shared by the heads sums over all of them."""
    if grad_emb.shape[0] != q_chunk.shape[0]:  # [1 d_head n_positions]: one matmul
        q_chunk = q_chunk.reshape(1, -1, q_chunk.shape[-1])
        grad_z = grad_z.reshape(1, -1, grad_z.shape[-1])
    if grad_emb.dtype == q_chunk.dtype:
        grad_emb.baddbmm_(q_chunk.transpose(-1, -2), grad_z)
    else:
        grad_emb += torch.bmm(q_chunk.transpose(-1, -2), grad_z)


def _chunk_z(q: Tensor, emb: Tensor, a: int, b: int) -> Tensor:
    """``z = q . E`` for query rows ``a:b``, [batch head_index chunk n_positions] (a view of one
    [head_index (batch chunk) n_positions] (batched) matmul)."""
    z = _times_table(_chunk_q(q, a, b), emb)
    return z.unflatten(1, (q.shape[0], b - a)).transpose(0, 1)


def _step(z: Tensor) -> Tensor:
    """``z[p + 1] - z[p]`` along the last dimension, 0 at the last position (frac = 0 there)."""
    step = torch.empty_like(z)
    torch.sub(z[..., 1:], z[..., :-1], out=step[..., :-1])
    step[..., -1] = 0
    return step


def _chunk_rows(x: Tensor) -> int:
    """Query rows per chunk: about ``CHUNK_ELEMENTS`` elements of [batch head chunk key]."""
    return max(1, CHUNK_ELEMENTS // max(1, x.numel() // max(1, x.shape[-2])))


def _idle(hook: object) -> bool:
    """No hook point, or one that nothing watches (an ``nn.Module`` without hooks)."""
    return hook is None or (
        isinstance(hook, nn.Module)
        and not (
            hook._forward_hooks
            or hook._forward_pre_hooks
            or hook._backward_hooks
            or hook._backward_pre_hooks
        )
    )

"""Peak activation memory from tensor lifetimes.

The model is the one a static memory planner for a microcontroller (TFLite Micro's arena,
say) works with, without any reuse trick beyond freeing dead buffers:

- ops run one at a time, in graph order;
- a buffer is allocated when the op that produces it runs and freed right after its
  last consumer has run; a buffer nobody reads is freed right after it is written;
- graph inputs are live from the start until their last use; graph outputs stay live
  to the end;
- weights (parameters, initializers) are not activations: they live in flash;
- a view or in-place op (reshape, flatten, squeeze, identity, eval dropout, an in-place
  ReLU...) allocates nothing: its output shares the buffer of the tensor it aliases,
  which then lives until the last use of any of its aliases.

While op ``i`` runs, the live bytes are its inputs, its outputs and every other buffer
that is still needed later: ``live[i] = sum(bytes(b) for b if alloc(b) <= i <= free(b))``.
The peak is the largest ``live[i]``; fragmentation and operator scratch space are not
modelled, so a real arena is at least this large.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgepipe.analysis.graph import Graph


@dataclass(frozen=True)
class MemoryPlan:
    """Live activation bytes while each op runs, and where the peak is."""

    live_bytes: list[int]
    peak_bytes: int
    peak_index: int | None  # index into graph.nodes; None for a graph without ops


def plan_memory(graph: Graph) -> MemoryPlan:
    """Live bytes at every step of ``graph`` and the peak (see the module docstring)."""
    end = len(graph.nodes)
    storage: dict[str, str] = {}  # tensor -> the tensor that owns its buffer
    alloc: dict[str, int] = {}  # owner -> step it is written (inputs: 0)
    free: dict[str, int] = {}  # owner -> last step it is needed

    for name in graph.inputs:
        storage[name] = name
        alloc[name] = free[name] = 0
    for step, node in enumerate(graph.nodes):
        for name in node.inputs:
            owner = storage.get(name)
            if owner is not None:
                free[owner] = max(free[owner], step)
        for name in node.outputs:
            source = node.aliases.get(name)
            if source is not None and source in storage:
                owner = storage[source]
                storage[name] = owner
                free[owner] = max(free[owner], step)
            else:
                storage[name] = name
                alloc[name] = free[name] = step
    for name in graph.outputs:
        owner = storage.get(name)
        if owner is not None:
            free[owner] = end

    # A difference array: +bytes at the step a buffer appears, -bytes after its last use.
    delta = [0] * (end + 2)
    for owner, start in alloc.items():
        size = graph.nbytes(owner)
        delta[start] += size
        delta[min(free[owner], end) + 1] -= size
    live, running = [], 0
    for step in range(end):
        running += delta[step]
        live.append(running)
    if not live:
        return MemoryPlan([], sum(graph.nbytes(n) for n in graph.inputs), None)
    peak_index = max(range(end), key=lambda i: (live[i], -i))
    return MemoryPlan(live, live[peak_index], peak_index)

"""Untrained MTP generator (motep ships no untrained ``.mtp`` files and no generator).

Shapeev's level definition: lev(M_{mu,nu}) = 2 + 4 mu + nu, and the level of a product or
contraction of moments is the sum of their levels.  The basis of level L is every scalar
that is a product of fully contracted moment networks with total level <= L.

A contraction network is a multigraph: one node per moment M_{mu,nu} (nu = its degree),
one edge per contracted index pair, no self-contractions (a trace of M_{mu,nu} reduces to
M_{mu,nu-2} since MTP uses unit vectors).  Two further restrictions reproduce the published
MLIP-2 template counts (levels 06/08/10/16: 5/9/16/92 basis functions, 2/2/3/4 radial
functions): tensor rank nu <= 3 and at most two indices contracted between two moments.

Each network is expanded over Cartesian index values into a polynomial of basic moment
components (mu, a, b, c) = sum_j f_mu(r_ij) x^a y^b z^c (unit vector), then written as
MLIP-2 ``alpha_index_times`` entries ``m[i3] += mult * m[i1] * m[i2]``.  Products of the
same components are shared, so ``alpha_moments_count`` stays small.
"""

from __future__ import annotations

import itertools
from functools import cache
from pathlib import Path

from autopot.errors import MTPError

MAX_RANK = 3
MAX_EDGE_MULT = 2


def _canon(mus: tuple[int, ...], edges: dict[tuple[int, int], int]):
    """Canonical form of a labelled multigraph: the smallest relabelling.

    Only permutations within classes of nodes with equal invariants (mu, degree, sorted
    neighbour (mu, multiplicity)) are tried, which keeps level 28 tractable.
    """
    n = len(mus)
    nbrs: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    deg = [0] * n
    for (i, j), m in edges.items():
        nbrs[i].append((mus[j], m))
        nbrs[j].append((mus[i], m))
        deg[i] += m
        deg[j] += m
    inv = [(mus[v], deg[v], tuple(sorted(nbrs[v]))) for v in range(n)]
    classes: dict = {}
    for v in range(n):
        classes.setdefault(inv[v], []).append(v)
    keys = sorted(classes)
    best = None
    for parts in itertools.product(*(itertools.permutations(classes[k]) for k in keys)):
        perm = [v for part in parts for v in part]  # perm[new] = old
        pos = {old: new for new, old in enumerate(perm)}
        key = (
            tuple(mus[perm[k]] for k in range(n)),
            tuple(
                sorted((min(pos[i], pos[j]), max(pos[i], pos[j]), m) for (i, j), m in edges.items())
            ),
        )
        if best is None or key < best:
            best = key
    return best


def _connected(n: int, edges) -> bool:
    adj: dict[int, set[int]] = {i: set() for i in range(n)}
    for i, j in edges:
        adj[i].add(j)
        adj[j].add(i)
    seen, stack = {0}, [0]
    while stack:
        for y in adj[stack.pop()]:
            if y not in seen:
                seen.add(y)
                stack.append(y)
    return len(seen) == n


def _networks_of_size(n: int, level: int, found: dict) -> None:
    """Add every connected network of ``n`` moments with level <= ``level`` to ``found``."""
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    max_edges = (level - 2 * n) // 2
    deg = [0] * n
    cur: dict[tuple[int, int], int] = {}

    def rec(k: int, nedges: int) -> None:
        if k == len(pairs):
            if n > 1 and not _connected(n, cur):
                return
            budget = (level - 2 * n - 2 * nedges) // 4
            for mus in itertools.product(range(budget + 1), repeat=n):
                if sum(mus) <= budget:
                    found[_canon(mus, cur)] = 2 * n + 2 * nedges + 4 * sum(mus)
            return
        i, j = pairs[k]
        for m in range(0, min(MAX_EDGE_MULT, max_edges - nedges) + 1):
            if m and (deg[i] + m > MAX_RANK or deg[j] + m > MAX_RANK):
                break
            if m:
                cur[(i, j)] = m
                deg[i] += m
                deg[j] += m
            rec(k + 1, nedges + m)
            if m:
                del cur[(i, j)]
                deg[i] -= m
                deg[j] -= m

    rec(0, 0)


@cache
def connected_networks(level: int) -> tuple:
    """Canonical connected networks ``((mus, edges), level)`` with level <= ``level``."""
    found: dict = {}
    n = 1
    # a connected network of n moments has >= n-1 edges: level >= 2n + 2(n-1)
    while n == 1 or 4 * n - 2 <= level:
        _networks_of_size(n, level, found)
        n += 1
    return tuple(sorted(found.items(), key=lambda kv: (kv[1], kv[0])))


def basis_products(level: int) -> list[tuple[int, ...]]:
    """Multisets of connected networks (indices) with total level <= ``level``."""
    nets = connected_networks(level)
    levels = [lv for _, lv in nets]
    out: list[tuple[int, ...]] = []

    def rec(start: int, budget: int, cur: list[int]) -> None:
        for k in range(start, len(levels)):
            if levels[k] <= budget:
                cur.append(k)
                out.append(tuple(cur))
                rec(k, budget - levels[k], cur)
                cur.pop()

    rec(0, level, [])
    return sorted(out, key=lambda t: (sum(levels[k] for k in t), t))


def _expand(mus: tuple[int, ...], edges: tuple) -> dict[tuple, int]:
    """Polynomial of one network: {sorted tuple of components (mu,a,b,c): coefficient}."""
    slots = [(i, j) for i, j, m in edges for _ in range(m)]
    poly: dict[tuple, int] = {}
    for assign in itertools.product(range(3), repeat=len(slots)):
        powers = [[0, 0, 0] for _ in mus]
        for (i, j), ax in zip(slots, assign, strict=False):
            powers[i][ax] += 1
            powers[j][ax] += 1
        mono = tuple(sorted((mus[v], *powers[v]) for v in range(len(mus))))
        poly[mono] = poly.get(mono, 0) + 1
    return poly


def build_mtp_arrays(level: int) -> dict:
    """alpha_index_basic/times/mapping and counts for a level-``level`` MTP."""
    nets = connected_networks(level)
    products = basis_products(level)
    polys = [_expand(mus, edges) for (mus, edges), _ in nets]
    comps = sorted(
        {c for p in polys for mono in p for c in mono},
        key=lambda c: (c[0], sum(c[1:]), tuple(-x for x in c[1:])),
    )
    basic = {c: i for i, c in enumerate(comps)}
    times: list[tuple[int, int, int, int]] = []
    next_index = len(comps)
    prod_index: dict[tuple, int] = {}

    def product(mono: tuple) -> int:
        """Index of the moment holding the product of the components in ``mono``."""
        nonlocal next_index
        if len(mono) == 1:
            return basic[mono[0]]
        if mono not in prod_index:
            left = product(mono[:-1])
            idx = next_index
            next_index += 1
            times.append((left, basic[mono[-1]], 1, idx))
            prod_index[mono] = idx
        return prod_index[mono]

    net_index: list[int] = []
    for poly in polys:
        if len(poly) == 1:
            ((mono, coef),) = poly.items()
            if coef == 1:
                net_index.append(product(mono))
                continue
        # accumulate sum_k coef_k * prod_k; the last factor multiplies into the target
        pending = []
        for mono, coef in sorted(poly.items()):
            left = product(mono[:-1]) if len(mono) > 1 else None
            pending.append((mono, coef, left))
        target = next_index
        next_index += 1
        for mono, coef, left in pending:
            if left is None:  # a single component with coefficient != 1: c * m * 1 impossible
                raise RuntimeError("unexpected linear term in a contraction")
            times.append((left, basic[mono[-1]], coef, target))
        net_index.append(target)
    # products of connected scalars, shared prefixes
    scal_prod: dict[tuple, int] = {}

    def sprod(t: tuple) -> int:
        nonlocal next_index
        if len(t) == 1:
            return net_index[t[0]]
        if t not in scal_prod:
            left = sprod(t[:-1])
            idx = next_index
            next_index += 1
            times.append((left, net_index[t[-1]], 1, idx))
            scal_prod[t] = idx
        return scal_prod[t]

    mapping = [sprod(t) for t in products]
    rfc = max(c[0] for c in comps) + 1
    return {
        "radial_funcs_count": rfc,
        "alpha_moments_count": next_index,
        "alpha_index_basic": [list(c) for c in comps],
        "alpha_index_times": [list(t) for t in times],
        "alpha_moment_mapping": mapping,
    }


def format_untrained_mtp(
    level: int,
    species_count: int,
    cutoff: float = 5.0,
    min_dist: float = 2.0,
    radial_basis_size: int = 8,
) -> str:
    """Text of an untrained MLIP-2 .mtp (no coefficients: trainers initialise them)."""
    if not isinstance(level, int) or not 2 <= level <= 28 or level % 2:
        raise MTPError(f"level must be an even integer in 2..28, got {level!r}", field="level")
    if not isinstance(species_count, int) or species_count < 1:
        raise MTPError(f"species_count must be >= 1, got {species_count!r}", field="species_count")
    if not 0 < min_dist < cutoff:
        raise MTPError(f"need 0 < min_dist < cutoff, got {min_dist} and {cutoff}", field="cutoff")
    if not isinstance(radial_basis_size, int) or radial_basis_size < 2:
        raise MTPError(
            f"radial_basis_size must be >= 2, got {radial_basis_size!r}", field="radial_basis_size"
        )
    arr = build_mtp_arrays(level)

    def fmt(rows: list) -> str:
        if rows and isinstance(rows[0], list):
            return "{" + ", ".join("{" + ", ".join(map(str, r)) + "}" for r in rows) + "}"
        return "{" + ", ".join(map(str, rows)) + "}"

    return "\n".join(
        [
            "MTP",
            "version = 1.1.0",
            f"potential_name = MTP_level{level:02d}",
            f"species_count = {species_count}",
            "potential_tag = ",
            "radial_basis_type = RBChebyshev",
            f"\tmin_dist = {min_dist!r}",
            f"\tmax_dist = {cutoff!r}",
            f"\tradial_basis_size = {radial_basis_size}",
            f"\tradial_funcs_count = {arr['radial_funcs_count']}",
            f"alpha_moments_count = {arr['alpha_moments_count']}",
            f"alpha_index_basic_count = {len(arr['alpha_index_basic'])}",
            f"alpha_index_basic = {fmt(arr['alpha_index_basic'])}",
            f"alpha_index_times_count = {len(arr['alpha_index_times'])}",
            f"alpha_index_times = {fmt(arr['alpha_index_times'])}",
            f"alpha_scalar_moments = {len(arr['alpha_moment_mapping'])}",
            f"alpha_moment_mapping = {fmt(arr['alpha_moment_mapping'])}",
            "",
        ]
    )


def generate_untrained_mtp(
    level: int,
    species_count: int,
    cutoff: float = 5.0,
    min_dist: float = 2.0,
    radial_basis_size: int = 8,
    path: str | Path | None = None,
) -> str:
    """Generate an untrained level-``level`` MTP; write it to ``path`` if given.

    Returns the file text.  ``min_dist`` is the inner end of the Chebyshev radial basis
    (MLIP-2 templates use ~ the shortest bond expected).
    """
    text = format_untrained_mtp(level, species_count, cutoff, min_dist, radial_basis_size)
    if path is not None:
        from autopot.atomic import atomic_write_text

        atomic_write_text(path, text)
    return text

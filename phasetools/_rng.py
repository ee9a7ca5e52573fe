"""Randomness of phasetools: seed handling and the per-trajectory streams of the kernels.

The ``rng=`` argument of every public function (None, an int >= 0, a
``numpy.random.SeedSequence`` or a ``numpy.random.Generator``) is normalised here:
:func:`entropy_of` gives the one recorded entropy integer, :func:`seed_sequence` the
``SeedSequence`` a protocol spawns from, :func:`generator` a numpy ``Generator`` and
:func:`seeds_record` the one encoding of ``seeds`` in results and files.

Per-trajectory random streams inside numba kernels: xoshiro256** with a ziggurat normal.

Each trajectory carries its own 4-word xoshiro256** state (Blackman & Vigna), seeded by
splitmix64 from a 64-bit key derived with ``numpy.random.SeedSequence`` from the run's
entropy and the trajectory index, so a trajectory's stream does not depend on which
thread runs it or on how many threads there are, and any trajectory can be replayed
alone. Normals use the Marsaglia-Tsang ziggurat (128 layers) on 32-bit halves of each
64-bit draw: one generator call gives up to two normals on the fast path.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._numba import jit

__all__ = ["entropy_of", "seed_sequence", "generator", "seeds_record", "trajectory_keys", "seed_states", "ZIG_K", "ZIG_W", "ZIG_F", "next_u64", "uniform", "normal_pair"]

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
_RNG_KINDS = "rng must be None, an int >= 0, a SeedSequence or a Generator"


def _check_int(rng):
    """``rng`` as a Python int >= 0 (ValueError for bool and negative ints)."""
    if isinstance(rng, (bool, np.bool_)):
        raise ValueError(f"{_RNG_KINDS}, got {rng!r}")
    if rng < 0:
        raise ValueError(f"rng must be an int >= 0, got {rng}")
    return int(rng)


def entropy_of(rng) -> int:
    """Normalise ``rng`` to the one entropy integer a result records.

    Parameters
    ----------
    rng : None, int >= 0, numpy.random.SeedSequence or numpy.random.Generator
        None draws fresh entropy from the OS; an int is its own entropy; a
        ``SeedSequence`` gives 128 bits of its state; a ``Generator`` one draw below 2**63.

    Returns
    -------
    int
        The entropy (>= 0) from which the run's streams are derived.
    """
    if rng is None:
        return int(np.random.SeedSequence().entropy)
    if isinstance(rng, (numbers.Integral, np.bool_)):
        return _check_int(rng)
    if isinstance(rng, np.random.SeedSequence):
        return int.from_bytes(rng.generate_state(4, dtype=np.uint32).tobytes(), "little")
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(0, 2**63))
    raise ValueError(f"{_RNG_KINDS}, got {type(rng).__name__}")


def seed_sequence(rng) -> np.random.SeedSequence:
    """``rng`` as a ``SeedSequence`` to spawn independent streams from.

    Parameters
    ----------
    rng : None, int >= 0, numpy.random.SeedSequence or numpy.random.Generator
        A ``SeedSequence`` passes through unchanged (its spawn key is kept); otherwise the
        result is ``SeedSequence(entropy_of(rng))`` (so None and an int give
        ``SeedSequence()`` and ``SeedSequence(rng)``).

    Returns
    -------
    numpy.random.SeedSequence
    """
    if isinstance(rng, np.random.SeedSequence):
        return rng
    return np.random.SeedSequence(entropy_of(rng))


def generator(rng) -> np.random.Generator:
    """``rng`` as a numpy ``Generator``.

    Parameters
    ----------
    rng : None, int >= 0, numpy.random.SeedSequence or numpy.random.Generator
        A ``Generator`` passes through unchanged; anything else gives
        ``numpy.random.default_rng(rng)``.

    Returns
    -------
    numpy.random.Generator
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, np.random.SeedSequence):
        return np.random.default_rng(rng)
    if not isinstance(rng, (numbers.Integral, np.bool_)):
        raise ValueError(f"{_RNG_KINDS}, got {type(rng).__name__}")
    return np.random.default_rng(_check_int(rng))


def seeds_record(seq: np.random.SeedSequence) -> tuple[int, ...]:
    """The ``seeds`` a result stores for a run spawned from ``seq``.

    Parameters
    ----------
    seq : numpy.random.SeedSequence
        The run's root sequence (from :func:`seed_sequence`).

    Returns
    -------
    tuple of int
        ``(entropy, *spawn_key)``: ``SeedSequence(entropy, spawn_key=spawn_key)`` rebuilds it.
    """
    if not isinstance(seq, np.random.SeedSequence):
        raise ValueError(f"seq must be a numpy.random.SeedSequence, got {type(seq).__name__}")
    return (int(seq.entropy), *(int(k) for k in seq.spawn_key))


def trajectory_keys(entropy: int, indices) -> np.ndarray:
    """64-bit seed keys of trajectories ``indices`` of the run with root ``entropy``.

    Key ``i`` is the first word of ``SeedSequence(entropy).generate_state`` for the run,
    hashed with the index by splitmix64 inside :func:`seed_states`; computed in bulk.
    """
    root = np.random.SeedSequence(entropy)
    k0, k1 = root.generate_state(2, dtype=np.uint64)
    idx = np.asarray(indices, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return (k0 ^ (idx * np.uint64(0x9E3779B97F4A7C15))) + k1


@jit
def _splitmix64(x):
    x = x + np.uint64(0x9E3779B97F4A7C15)
    z = x
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x, z ^ (z >> np.uint64(31))


@jit
def seed_states(keys):
    """xoshiro256** states (n, 4) from 64-bit keys via splitmix64 (never all zero)."""
    n = keys.shape[0]
    out = np.empty((n, 4), dtype=np.uint64)
    for i in range(n):
        x = keys[i]
        for j in range(4):
            x, z = _splitmix64(x)
            out[i, j] = z
    return out


@jit
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@jit
def next_u64(s):
    """Advance the xoshiro256** state ``s`` (a length-4 uint64 array) and return 64 bits."""
    result = _rotl(s[1] * np.uint64(5), 7) * np.uint64(9)
    t = s[1] << np.uint64(17)
    s[2] ^= s[0]
    s[3] ^= s[1]
    s[1] ^= s[2]
    s[0] ^= s[3]
    s[2] ^= t
    s[3] = _rotl(s[3], 45)
    return result


@jit
def uniform(s):
    """A uniform double in (0, 1) (53 random bits, never exactly 0)."""
    return ((next_u64(s) >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)


def _ziggurat_tables():
    """Marsaglia & Tsang (2000) tables for 128 layers, 32-bit integers."""
    m1 = 2147483648.0
    dn = 3.442619855899
    tn = dn
    vn = 9.91256303526217e-3
    kn = np.zeros(128, dtype=np.int64)
    wn = np.zeros(128)
    fn = np.zeros(128)
    q = vn / np.exp(-0.5 * dn * dn)
    kn[0] = int((dn / q) * m1)
    kn[1] = 0
    wn[0] = q / m1
    wn[127] = dn / m1
    fn[0] = 1.0
    fn[127] = np.exp(-0.5 * dn * dn)
    for i in range(126, 0, -1):
        dn = np.sqrt(-2.0 * np.log(vn / dn + np.exp(-0.5 * dn * dn)))
        kn[i + 1] = int((dn / tn) * m1)
        tn = dn
        fn[i] = np.exp(-0.5 * dn * dn)
        wn[i] = dn / m1
    return kn, wn, fn


ZIG_K, ZIG_W, ZIG_F = _ziggurat_tables()
_ZR = 3.442619855899


@jit
def _zig_slow(hz, s, kn, wn, fn):
    """The ziggurat's rare path (about 3% of draws): wedges and the tail."""
    while True:
        iz = hz & 127
        if abs(hz) < kn[iz]:
            return hz * wn[iz]
        if iz == 0:  # base strip: sample the tail beyond r
            while True:
                x = -np.log(uniform(s)) / _ZR
                y = -np.log(uniform(s))
                if y + y >= x * x:
                    break
            return _ZR + x if hz > 0 else -_ZR - x
        x = hz * wn[iz]
        if fn[iz] + uniform(s) * (fn[iz - 1] - fn[iz]) < np.exp(-0.5 * x * x):
            return x
        hz = np.int64(np.int32(next_u64(s) >> np.uint64(32)))


@jit(inline="always")
def _next_scalar(s0, s1, s2, s3):
    """xoshiro256** on a state held in four scalars: (64 output bits, new state)."""
    m = s1 * np.uint64(5)
    u = ((m << np.uint64(7)) | (m >> np.uint64(57))) * np.uint64(9)
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = (s3 << np.uint64(45)) | (s3 >> np.uint64(19))
    return u, s0, s1, s2, s3


def _wedge_bounds(wn, fn):
    """Linear bounds on ``exp(-x^2/2)`` over each layer's wedge, to skip most ``exp`` calls.

    Layer ``i >= 1`` draws ``x = h * wn[i]``; its wedge is ``|x|`` in ``[a, b)`` with
    ``a = kn[i] wn[i]`` (the previous layer's edge; 0 for layer 1) and ``b = 2^31 wn[i]``.
    There ``f(x) = exp(-x^2/2)`` is convex (``a >= 1``) or concave (``b <= 1``), so the
    chord through ``(a, f(a))``, ``(b, f(b))`` and the tangent at the midpoint bracket it.
    Row ``i``: ``(c0, c1, d0, d1)`` with ``c0 + c1 |x| <= f(x) <= d0 + d1 |x|`` on the wedge,
    widened by 1e-12 (far above the rounding of these lines and of ``np.exp``), so the
    squeeze decides exactly as the ``exp`` comparison would; the layer containing ``x = 1``,
    and layer 0, get bounds that decide nothing.
    """
    out = np.empty((128, 4))
    out[:] = (-1.0, 0.0, 2.0, 0.0)  # y is in [0, 1]: never accept, never reject
    edge = 2147483648.0 * wn
    for i in range(1, 128):
        a = edge[i - 1] if i > 1 else 0.0
        b = edge[i]
        fa, fb = np.exp(-0.5 * a * a), np.exp(-0.5 * b * b)
        slope = (fb - fa) / (b - a)
        chord = (fa - slope * a, slope)
        m = 0.5 * (a + b)
        fm = np.exp(-0.5 * m * m)
        tangent = (fm + m * fm * m, -m * fm)
        if a >= 1.0:
            lo, hi = tangent, chord
        elif b <= 1.0:
            lo, hi = chord, tangent
        else:
            continue
        out[i] = (lo[0] - 1e-12, lo[1], hi[0] + 1e-12, hi[1])
    return out


ZIG_WEDGE = _wedge_bounds(ZIG_W, ZIG_F)


@jit
def _zig_slow_scalar(hz, s0, s1, s2, s3, kn, wn, fn, wedge):
    """:func:`_zig_slow` on a state held in scalars: returns ``(z, s0, s1, s2, s3)``.

    The same draws and the same normal as ``_zig_slow`` (the kernels keep each lane's
    state in arrays of words, so the array round trip and the per-draw array loads and
    stores of ``_zig_slow`` are avoided). ``wedge`` (:data:`ZIG_WEDGE`) brackets the
    density on each wedge by two lines, so that ``exp`` is only evaluated when the point
    falls between them; the accept/reject decisions are those of the ``exp`` test.
    """
    while True:
        iz = hz & 127
        if abs(hz) < kn[iz]:
            return hz * wn[iz], s0, s1, s2, s3
        if iz == 0:  # base strip: sample the tail beyond r
            while True:
                u, s0, s1, s2, s3 = _next_scalar(s0, s1, s2, s3)
                x = -np.log(((u >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)) / _ZR
                u, s0, s1, s2, s3 = _next_scalar(s0, s1, s2, s3)
                y = -np.log(((u >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0))
                if y + y >= x * x:
                    break
            return (_ZR + x if hz > 0 else -_ZR - x), s0, s1, s2, s3
        x = hz * wn[iz]
        u, s0, s1, s2, s3 = _next_scalar(s0, s1, s2, s3)
        y = fn[iz] + ((u >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0) * (fn[iz - 1] - fn[iz])
        ax = abs(x)
        if y < wedge[iz, 0] + wedge[iz, 1] * ax:
            return x, s0, s1, s2, s3
        if y <= wedge[iz, 2] + wedge[iz, 3] * ax and y < np.exp(-0.5 * x * x):
            return x, s0, s1, s2, s3
        u, s0, s1, s2, s3 = _next_scalar(s0, s1, s2, s3)
        hz = np.int64(u) >> np.int64(32)


@jit
def normal_pair(s, kn, wn, fn):
    """Two independent standard normals from one 64-bit draw (for non-critical code).

    The generated Langevin kernels use the same algorithm (hi half, then lo half of one
    output), batched over their lanes (``_codegen.kernel_source``): a call across a numba
    function boundary costs several times the draw itself (measured: about 35 ns against
    5 ns per normal).
    """
    u = next_u64(s)
    hz1 = np.int64(np.int32(u >> np.uint64(32)))
    hz2 = np.int64(np.int32(u & np.uint64(0xFFFFFFFF)))
    i1 = hz1 & 127
    i2 = hz2 & 127
    if abs(hz1) < kn[i1]:
        z1 = hz1 * wn[i1]
    else:
        z1 = _zig_slow(hz1, s, kn, wn, fn)
    if abs(hz2) < kn[i2]:
        z2 = hz2 * wn[i2]
    else:
        z2 = _zig_slow(hz2, s, kn, wn, fn)
    return z1, z2

"""Per-trajectory random streams inside numba kernels: xoshiro256** with a ziggurat normal.

Each trajectory carries its own 4-word xoshiro256** state (Blackman & Vigna), seeded by
splitmix64 from a 64-bit key derived with ``numpy.random.SeedSequence`` from the run's
entropy and the trajectory index, so a trajectory's stream does not depend on which
thread runs it or on how many threads there are, and any trajectory can be replayed
alone. Normals use the Marsaglia-Tsang ziggurat (128 layers) on 32-bit halves of each
64-bit draw: one generator call gives up to two normals on the fast path.
"""

from __future__ import annotations

import numpy as np

from .._numba import jit

__all__ = ["trajectory_keys", "seed_states", "ZIG_K", "ZIG_W", "ZIG_F", "next_u64", "uniform", "normal_pair"]

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


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


@jit
def normal_pair(s, kn, wn, fn):
    """Two independent standard normals from one 64-bit draw (for non-critical code).

    The generated Langevin kernels inline the same algorithm on a register copy of the
    state (``_codegen._normal_pair_lines``): a call across a numba function boundary costs
    several times the draw itself (measured: about 35 ns against 5 ns per normal).
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

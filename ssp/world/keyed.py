"""Counter-based random numbers: a uniform draw as a pure function of a key (splitmix64).

The intent chains use them so that a pair's trajectory depends only on the seed, the pair and how
many transitions it has made, never on who read the world before (an oracle asking for P(click)
must not change what users do next). Vectorised over uint64 arrays; array arithmetic wraps
around silently, which is what the hash wants.
"""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_TO_UNIT = 2.0**-53


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser over a uint64 array."""
    z = x + _GOLDEN
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def uniform(key: np.ndarray) -> np.ndarray:
    """A float64 in [0, 1) per uint64 key."""
    return (mix64(key) >> _S11).astype(np.float64) * _TO_UNIT


def seed_key(seed: int, salt: int) -> np.uint64:
    """A well-mixed uint64 base key for ``seed`` and a stream ``salt``."""
    x = np.array([(seed * 0x100000001B3 + salt) & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64)
    return np.uint64(mix64(mix64(x))[0])

"""RFC 6962 / RFC 9162 Merkle tree: hashing, an append-only tree with historical roots and proofs, compact ranges,
and the RFC 9162 proof verification algorithms.

Pure Python over hashlib. Node hashes live in one bytearray per level (32 bytes per node) rather than in lists of
bytes objects, which keeps a million-leaf tree at ~64 MiB and makes each stored node one slice away.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MerkleTree",
    "compact_range_append",
    "compact_range_root",
    "leaf_hash",
    "node_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32

# Bound once: these are called millions of times while building a large tree.
_sha256 = hashlib.sha256
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 6962 leaf hash SHA-256(0x00 || data)."""
    return _sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 6962 interior node hash SHA-256(0x01 || left || right)."""
    return _sha256(_NODE_PREFIX + left + right).digest()


EMPTY_ROOT: bytes = _sha256(b"").digest()
"""MTH({}) = SHA-256 of the empty string: the root of the tree with no leaves."""


def _is_hash(value: object) -> bool:
    # Exact types only: bytes(32) of an int would silently be 32 zero bytes, and str is never a hash.
    return isinstance(value, bytes | bytearray) and len(value) == HASH_SIZE


def _check_hash(value: object, what: str) -> None:
    if not _is_hash(value):
        raise ValueError(f"{what} must be {HASH_SIZE} bytes")


def _split(n: int) -> int:
    """The largest power of two strictly smaller than n (n >= 2): where RFC 6962 splits a range of n leaves."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """Append-only tree over leaf hashes, keeping every level of complete subtrees in bytearrays
    (32 bytes per node) so that roots and proofs for any earlier size cost O(log n) lookups."""

    __slots__ = ("_levels", "_size")

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        # _levels[k] holds the roots of the aligned perfect subtrees of 2**k leaves, left to right; a node is
        # written as soon as its two children exist, so every complete subtree of every earlier size is stored.
        self._levels: list[bytearray] = [bytearray()]
        self._size = 0
        self.extend(leaf_hashes)

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def append(self, leaf_hash: bytes) -> None:
        """Append one leaf hash (the output of leaf_hash(), not the raw entry)."""
        _check_hash(leaf_hash, "leaf hash")
        levels = self._levels
        levels[0] += leaf_hash
        self._size += 1
        # Level k gains a node each time level k-1 reaches an even count; the count at level k is size >> k.
        count = self._size
        k = 0
        while not count & 1:
            pair = levels[k][-2 * HASH_SIZE :]
            k += 1
            if k == len(levels):
                levels.append(bytearray())
            levels[k] += _sha256(_NODE_PREFIX + pair).digest()
            count >>= 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append many leaf hashes; all are validated first, so a bad one leaves the tree unchanged."""
        batch = bytearray()
        for h in leaf_hashes:
            _check_hash(h, "leaf hash")
            batch += h
        if not batch:
            return
        levels = self._levels
        levels[0] += batch
        self._size += len(batch) // HASH_SIZE
        # Fill each level from the one below in a single pass: siblings are adjacent, so a parent's preimage is
        # one 64-byte slice. Once a level gains nothing, no level above it can either.
        k = 0
        while True:
            lower = levels[k]
            want = len(lower) // (2 * HASH_SIZE)
            if want == 0:
                break
            if k + 1 == len(levels):
                levels.append(bytearray())
            upper = levels[k + 1]
            have = len(upper) // HASH_SIZE
            if have == want:
                break
            parents = bytearray()
            for off in range(have * 2 * HASH_SIZE, want * 2 * HASH_SIZE, 2 * HASH_SIZE):
                parents += _sha256(_NODE_PREFIX + lower[off : off + 2 * HASH_SIZE]).digest()
            upper += parents
            k += 1

    def leaf(self, index: int) -> bytes:
        """The leaf hash at index (0-based); IndexError when out of range."""
        if not 0 <= index < self._size:
            raise IndexError(f"leaf index {index} out of range for tree of size {self._size}")
        off = index * HASH_SIZE
        return bytes(self._levels[0][off : off + HASH_SIZE])

    def root(self, size: int | None = None) -> bytes:
        """MTH of the first `size` leaves (default: all of them)."""
        size = self._resolve_size(size)
        return self._mth(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 section 2.1.3.1 PATH(index, D[size]): the audit path of leaf `index` in the tree of `size`."""
        size = self._resolve_size(size)
        if not 0 <= index < size:
            raise ValueError(f"leaf index {index} out of range for tree of size {size}")
        # PATH recurses into the half holding the leaf and appends the other half's MTH *after* the sub-path,
        # so walking top-down collects the siblings root-first; reverse to get the RFC's leaf-first order.
        siblings: list[bytes] = []
        start, end = 0, size
        while end - start > 1:
            k = _split(end - start)
            if index < start + k:
                siblings.append(self._mth(start + k, end))
                end = start + k
            else:
                siblings.append(self._mth(start, start + k))
                start += k
        siblings.reverse()
        return siblings

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """RFC 9162 section 2.1.4.1 PROOF(old_size, D[new_size]); empty when old_size is 0 or equals new_size."""
        new_size = self._resolve_size(new_size)
        if old_size < 0 or old_size > new_size:
            raise ValueError(f"old size {old_size} must be within 0..{new_size}")
        if old_size in (0, new_size):
            return []
        # SUBPROOF(m, D[start:end], b), unrolled top-down like PATH and reversed for the same reason.
        nodes: list[bytes] = []
        m, start, end, whole = old_size, 0, new_size, True
        while m != end - start:
            k = _split(end - start)
            if m <= k:
                nodes.append(self._mth(start + k, end))
                end = start + k
            else:
                nodes.append(self._mth(start, start + k))
                m -= k
                start += k
                whole = False
        if not whole:
            # The old tree is not a complete subtree of the new one, so the verifier needs this subtree's root;
            # when it is (b still true), the verifier already holds that root as old_root.
            nodes.append(self._mth(start, end))
        nodes.reverse()
        return nodes

    def _resolve_size(self, size: int | None) -> int:
        if size is None:
            return self._size
        if not 0 <= size <= self._size:
            raise ValueError(f"tree size {size} must be within 0..{self._size}")
        return size

    def _mth(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for 0 <= start <= end <= size, from stored complete subtrees plus O(log n) hashing."""
        n = end - start
        if n == 0:
            return EMPTY_ROOT
        # The ranges met by RFC recursion are an aligned perfect subtree or split into one (left) plus a smaller
        # remainder (right); peel the left parts off, look up the last perfect piece, and fold back up.
        lefts: list[bytes] = []
        while n & (n - 1) or start % n:
            k = _split(n)
            lefts.append(self._mth(start, start + k))
            start += k
            n -= k
        level = n.bit_length() - 1
        off = (start >> level) * HASH_SIZE
        h = bytes(self._levels[level][off : off + HASH_SIZE])
        for left in reversed(lefts):
            h = _sha256(_NODE_PREFIX + left + h).digest()
        return h


def compact_range_append(frontier: list[bytes], size: int, leaf_hash: bytes) -> list[bytes]:
    """Given the 'frontier' (roots of the perfect subtrees of a tree of `size` leaves, largest first, one per set bit
    of size) return the frontier after appending one leaf. O(log n), no stored tree needed."""
    if size < 0 or len(frontier) != size.bit_count():
        raise ValueError(f"a frontier for size {size} has {max(size, 0).bit_count()} hashes, got {len(frontier)}")
    _check_hash(leaf_hash, "leaf hash")
    # Adding one to size carries through its trailing one bits; each carry merges the smallest subtree with the
    # new one, exactly like binary addition. A new list keeps the caller's frontier valid for the old size.
    new = list(frontier)
    h = bytes(leaf_hash)
    while size & 1:
        h = _sha256(_NODE_PREFIX + new.pop() + h).digest()
        size >>= 1
    new.append(h)
    return new


def compact_range_root(frontier: list[bytes]) -> bytes:
    """Root of the tree a frontier describes: node(f0, node(f1, ... node(f_{k-1}, f_k))); EMPTY_ROOT for []."""
    if not frontier:
        return EMPTY_ROOT
    # RFC 6962 splits off the largest perfect subtree first, so the smaller ones nest to the right.
    h = frontier[-1]
    for f in reversed(frontier[:-1]):
        h = _sha256(_NODE_PREFIX + f + h).digest()
    return bytes(h)


def _proof_list(proof: Sequence[bytes]) -> list[bytes] | None:
    # Verifiers take untrusted input: anything that is not a sequence of 32-byte hashes is simply not a proof.
    if isinstance(proof, str | bytes | bytearray | memoryview):
        return None
    try:
        items = list(proof)
    except TypeError:
        return None
    return items if all(_is_hash(p) for p in items) else None


def _is_size(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2: does `proof` show leaf_hash at `index` in the tree of `size` whose root is `root`?"""
    if not (_is_size(index) and _is_size(size) and _is_hash(leaf_hash) and _is_hash(root)):
        return False
    path = _proof_list(proof)
    if path is None:
        return False
    # Step 1.
    if index >= size:
        return False
    # Steps 2-4.
    fn, sn = index, size - 1
    r = bytes(leaf_hash)
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    # Step 5.
    return sn == 0 and r == root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2: does `proof` show the tree of `old_size` (old_root) is a prefix of the tree of
    `new_size` (new_root)? Equal sizes need an empty proof and equal roots; old_size 0 needs an empty proof."""
    if not (_is_size(old_size) and _is_size(new_size) and _is_hash(old_root) and _is_hash(new_root)):
        return False
    path = _proof_list(proof)
    if path is None or old_size > new_size:
        return False
    if old_size == new_size:
        return not path and old_root == new_root
    if old_size == 0:
        # Every tree extends the empty one, and PROOF(0, D[n]) is defined as empty.
        return not path
    # Step 1.
    if not path:
        return False
    # Step 2: a power-of-two old tree is a complete subtree of the new one, and PROOF omits its root.
    if old_size & (old_size - 1) == 0:
        path.insert(0, bytes(old_root))
    # Steps 3-4.
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Step 5.
    fr = sr = path[0]
    # Step 6.
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # Step 7.
    return fr == old_root and sr == new_root and sn == 0

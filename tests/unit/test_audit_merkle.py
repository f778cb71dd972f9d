"""The RFC 6962 / RFC 9162 Merkle tree: published vectors, an independent reference written from the RFC text,
tampered proofs, compact ranges, and a million-leaf build."""

from __future__ import annotations

import hashlib
import time

import pytest

from facewarden.audit.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    MerkleTree,
    compact_range_append,
    compact_range_root,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)


def h(hex_string: str) -> bytes:
    return bytes.fromhex(hex_string)


# ---------------------------------------------------------------------------------------------------------------------
# Published vectors, copied verbatim from github.com/transparency-dev/merkle (the Go library behind Trillian and
# Certificate Transparency logs):
#   testonly/constants.go   (commit 582a6ad190b6848f1d26f8bf08ddef29955d9db1): LeafInputs, NodeHashes, RootHashes,
#                           CompactTrees, EmptyRootHash
#   proof/verify_test.go    (commit 02194e9afb6c1d95b5381350007963aa70fff472): inclusionProofs, consistencyProofs,
#                           roots, and the corruption probes of corruptInclusionProof / corruptConsistencyProof
#   proof/proof_test.go     (commit 02a3e2029520f515596d5238c54fb0ac9e19bff4): TestInclusion / TestConsistency,
#                           which publish proofs as node IDs; turned into hashes here through NodeHashes
#   rfc6962/rfc6962_test.go (commit 78493b07ef9b552e3379abf9e23d4da26fbe797c): TestRFC6962Hasher
# ---------------------------------------------------------------------------------------------------------------------

LEAF_INPUTS = [
    h(""),
    h("00"),
    h("10"),
    h("2021"),
    h("3031"),
    h("40414243"),
    h("5051525354555657"),
    h("606162636465666768696a6b6c6d6e6f"),
]

# NodeHashes()[level][index]: every complete subtree of the 8-leaf tree.
NODE_HASHES = [
    [
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
        h("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        h("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
        h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ],
    [
        h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ],
    [
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ],
    [
        h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
    ],
]

# RootHashes()[size] for size 0..8 (the same values as `roots` in proof/verify_test.go, which starts at size 1).
ROOT_HASHES = [
    h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]

# verify_test.go `inclusionProofs` as (index, size, proof). The Go vectors number leaves from 1 (the test passes
# p.leaf-1); the indexes here are 0-based. {0, 0, nil} is left out: the Go test itself skips it as an invalid path.
INCLUSION_VECTORS = [
    (0, 1, []),
    (
        0,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (2, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]

# verify_test.go `consistencyProofs` as (old_size, new_size, proof).
CONSISTENCY_VECTORS = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

# proof_test.go names the nodes of the 7/8-leaf tree in its diagrams: leaves a..f, j (level 0), g h i (level 1),
# k (level 2); `rehash(...)` entries collapse i and j into their parent, written l here (MTH of leaves 4..6).
_a, _b, _c, _d, _e, _f, _j, _leaf7 = NODE_HASHES[0]
_g, _h, _i, _ = NODE_HASHES[1]
_k, _l8 = NODE_HASHES[2]
_l7 = hashlib.sha256(b"\x01" + _i + _j).digest()

# proof_test.go TestInclusion, sizes up to 8, as (index, size, proof).
NODE_ID_INCLUSION_VECTORS = [
    (0, 1, []),
    (0, 2, [_b]),
    (1, 2, [_a]),
    (1, 3, [_a, _c]),
    (0, 7, [_b, _h, _l7]),
    (1, 7, [_a, _h, _l7]),
    (2, 7, [_d, _g, _l7]),
    (3, 7, [_c, _g, _l7]),
    (4, 7, [_f, _j, _k]),
    (5, 7, [_e, _j, _k]),
    (6, 7, [_i, _k]),
    (2, 4, [_d, _g]),
    (3, 5, [_c, _g, _e]),
    (3, 6, [_c, _g, _i]),
    (4, 6, [_f, _k]),
]

# proof_test.go TestConsistency, sizes up to 8, as (old_size, new_size, proof).
NODE_ID_CONSISTENCY_VECTORS = [
    (1, 2, [_b]),
    (1, 4, [_b, _h]),
    (1, 6, [_b, _h, _i]),
    (2, 3, [_c]),
    (2, 8, [_h, _l8]),
    (3, 7, [_c, _d, _g, _l7]),
    (4, 7, [_l7]),
    (5, 7, [_e, _f, _j, _k]),
    (6, 7, [_i, _j, _k]),
    (7, 8, [_j, _leaf7, _i, _k]),
    (1, 1, []),
    (2, 2, []),
    (3, 3, []),
    (4, 4, []),
    (5, 5, []),
    (7, 7, []),
    (8, 8, []),
    (2, 4, [_h]),
    (3, 5, [_c, _d, _g, _e]),
    (3, 6, [_c, _d, _g, _i]),
    (4, 6, [_i]),
    (1, 7, [_b, _h, _l7]),
]

# constants.go CompactTrees(): the frontier of every size 0..8.
N0, N1, N2, N3 = NODE_HASHES
COMPACT_TREES = [
    [],
    [N0[0]],
    [N1[0]],
    [N1[0], N0[2]],
    [N2[0]],
    [N2[0], N0[4]],
    [N2[0], N1[2]],
    [N2[0], N1[2], N0[6]],
    [N3[0]],
]

SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")  # verify_test.go sha256SomeHash

ALL_INCLUSION_VECTORS = INCLUSION_VECTORS + NODE_ID_INCLUSION_VECTORS
ALL_CONSISTENCY_VECTORS = CONSISTENCY_VECTORS + NODE_ID_CONSISTENCY_VECTORS


def published_tree() -> MerkleTree:
    return MerkleTree(leaf_hash(d) for d in LEAF_INPUTS)


# ---------------------------------------------------------------------------------------------------------------------
# An independent reference, transcribed from RFC 9162 section 2.1 over raw entries with nothing but hashlib, and
# deliberately naive (recursion over list slices): slow, but each line can be checked against the RFC text.
# ---------------------------------------------------------------------------------------------------------------------


def _ref_k(n: int) -> int:
    # "k is the largest power of two smaller than n (i.e., k < n <= 2k)"
    k = 1
    while 2 * k < n:
        k *= 2
    return k


def ref_mth(entries: list[bytes]) -> bytes:
    n = len(entries)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + entries[0]).digest()
    k = _ref_k(n)
    return hashlib.sha256(b"\x01" + ref_mth(entries[:k]) + ref_mth(entries[k:])).digest()


def ref_path(m: int, entries: list[bytes]) -> list[bytes]:
    n = len(entries)
    if n == 1:
        return []
    k = _ref_k(n)
    if m < k:
        return [*ref_path(m, entries[:k]), ref_mth(entries[k:])]
    return [*ref_path(m - k, entries[k:]), ref_mth(entries[:k])]


def ref_subproof(m: int, entries: list[bytes], b: bool) -> list[bytes]:
    n = len(entries)
    if m == n:
        return [] if b else [ref_mth(entries)]
    k = _ref_k(n)
    if m <= k:
        return [*ref_subproof(m, entries[:k], b), ref_mth(entries[k:])]
    return [*ref_subproof(m - k, entries[k:], False), ref_mth(entries[:k])]


def ref_proof(m: int, entries: list[bytes]) -> list[bytes]:
    # PROOF is defined for 0 < m < n; the API answers [] for the trivial cases.
    if m in (0, len(entries)):
        return []
    return ref_subproof(m, entries, True)


REF_MAX = 70
REF_ENTRIES = [b"entry-%d" % i for i in range(REF_MAX)]  # distinct, so no two nodes share a hash
REF_LEAVES = [leaf_hash(e) for e in REF_ENTRIES]
REF_ROOTS = [ref_mth(REF_ENTRIES[:n]) for n in range(REF_MAX + 1)]
REF_TREE = MerkleTree(REF_LEAVES)


def flip(data: bytes, pos: int = 0, bit: int = 1) -> bytes:
    out = bytearray(data)
    out[pos] ^= bit
    return bytes(out)


def corrupted_inclusion(index: int, size: int, proof: list[bytes]) -> list[tuple[str, int, int, list[bytes], bytes]]:
    """Tampered (what, index, size, proof, root) claims about REF leaf `index`; each must be rejected."""
    root = REF_ROOTS[size]
    out: list[tuple[str, int, int, list[bytes], bytes]] = []
    for i in range(len(proof)):
        for pos, bit in ((0, 1), (HASH_SIZE - 1, 0x80)):
            bad = list(proof)
            bad[i] = flip(bad[i], pos, bit)
            out.append((f"flipped proof[{i}] byte {pos}", index, size, bad, root))
    if proof:
        out.append(("dropped last", index, size, proof[:-1], root))
        out.append(("dropped first", index, size, proof[1:], root))
    if len(proof) > 1:
        out.append(("swapped first two", index, size, [proof[1], proof[0], *proof[2:]], root))
    out.append(("extra at end", index, size, [*proof, root], root))
    out.append(("extra at front", index, size, [REF_LEAVES[index], *proof], root))
    out.append(("extra random", index, size, [*proof, SOME_HASH], root))
    out.append(("flipped root", index, size, proof, flip(root)))
    out.append(("empty-tree root", index, size, proof, EMPTY_ROOT))
    # Same root, another leaf position: every position has its own left/right pattern, so none of these can pass.
    for other in (index - 1, index + 1, index ^ 1, index ^ 2, size, size + 1, -1):
        if other != index:
            out.append((f"index {other}", other, size, proof, root))
    # Another size, claimed against that size's genuine root: the proof was made for a different tree shape.
    # (Against the *original* root a size change can legitimately pass: the RFC verifier trusts the caller that
    # root and size belong together, e.g. PATH(0, D[3]) also fits size 4's traversal.)
    for other in (size - 1, size + 1, 2 * size, size // 2):
        if other != size and 0 <= other <= REF_MAX:
            out.append((f"size {other} with its root", index, other, proof, REF_ROOTS[other]))
    return out


def corrupted_consistency(
    old: int, new: int, proof: list[bytes]
) -> list[tuple[str, int, int, bytes, bytes, list[bytes]]]:
    """Tampered (what, old, new, old_root, new_root, proof) claims over the REF tree; each must be rejected."""
    r1, r2 = REF_ROOTS[old], REF_ROOTS[new]
    out: list[tuple[str, int, int, bytes, bytes, list[bytes]]] = []
    for i in range(len(proof)):
        for pos, bit in ((0, 0x10), (HASH_SIZE - 1, 0x01)):
            bad = list(proof)
            bad[i] = flip(bad[i], pos, bit)
            out.append((f"flipped proof[{i}] byte {pos}", old, new, r1, r2, bad))
    out.append(("empty proof", old, new, r1, r2, []))
    out.append(("dropped last", old, new, r1, r2, proof[:-1]))
    out.append(("dropped first", old, new, r1, r2, proof[1:]))
    if len(proof) > 1:
        out.append(("swapped first two", old, new, r1, r2, [proof[1], proof[0], *proof[2:]]))
    out.append(("extra root1 at end", old, new, r1, r2, [*proof, r1]))
    out.append(("extra root2 at end", old, new, r1, r2, [*proof, r2]))
    out.append(("extra root1 at front", old, new, r1, r2, [r1, *proof]))
    out.append(("extra proof[0] at front", old, new, r1, r2, [proof[0], *proof]))
    out.append(("swapped roots", old, new, r2, r1, proof))
    out.append(("flipped old root", old, new, flip(r1), r2, proof))
    out.append(("flipped new root", old, new, r1, flip(r2), proof))
    # Another old size, same roots (the Go probes size1±1, size1^2) or that size's genuine root.
    for other in (old - 1, old + 1, old ^ 2):
        if other != old and 0 <= other <= new:
            out.append((f"old size {other}", other, new, r1, r2, proof))
            out.append((f"old size {other} with its root", other, new, REF_ROOTS[other], r2, proof))
    # Another new size, claimed against that size's genuine root (see corrupted_inclusion on why not the same root).
    for other in (new - 1, new + 1, 2 * new, new // 2):
        if other != new and 0 <= other <= REF_MAX:
            out.append((f"new size {other} with its root", old, other, r1, REF_ROOTS[other], proof))
    return out


# ---------------------------------------------------------------------------------------------------------------------
# 1. Published vectors.
# ---------------------------------------------------------------------------------------------------------------------


def test_hash_functions_match_published_vectors() -> None:
    # rfc6962/rfc6962_test.go TestRFC6962Hasher.
    assert h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == EMPTY_ROOT
    assert leaf_hash(b"") == h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    assert leaf_hash(b"L123456") == h("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
    assert node_hash(b"N123", b"N456") == h("aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb")
    # TestRFC6962HasherCollisions: domain separation and order dependence.
    h1, h2 = leaf_hash(b"Hello"), leaf_hash(b"World")
    assert h1 != h2
    assert node_hash(h1, h2) != leaf_hash(h1 + h2)
    assert node_hash(h1, h2) != node_hash(h2, h1)
    assert [leaf_hash(d) for d in LEAF_INPUTS] == NODE_HASHES[0]


def test_roots_of_every_size_match_published_vectors() -> None:
    tree = published_tree()
    assert tree.size == 8
    assert [tree.root(n) for n in range(9)] == ROOT_HASHES
    assert tree.root() == ROOT_HASHES[8]
    # Built leaf by leaf, the current root matches at every step too.
    growing = MerkleTree()
    assert growing.root() == ROOT_HASHES[0]
    for n, data in enumerate(LEAF_INPUTS, start=1):
        growing.append(leaf_hash(data))
        assert growing.root() == ROOT_HASHES[n], n
    # Every complete subtree the library publishes is the root of the matching range of leaves.
    for level, hashes in enumerate(NODE_HASHES):
        for index, expected in enumerate(hashes):
            width = 1 << level
            subtree = MerkleTree(leaf_hash(d) for d in LEAF_INPUTS[index * width : (index + 1) * width])
            assert subtree.root() == expected, (level, index)
    assert [tree.leaf(i) for i in range(8)] == NODE_HASHES[0]


@pytest.mark.parametrize(("index", "size", "expected"), ALL_INCLUSION_VECTORS)
def test_inclusion_proofs_match_published_vectors(index: int, size: int, expected: list[bytes]) -> None:
    tree = published_tree()
    assert tree.inclusion_proof(index, size) == expected
    assert verify_inclusion(NODE_HASHES[0][index], index, size, expected, ROOT_HASHES[size])
    # The reference agrees with the published proof too, which is what lets it stand in for vectors beyond 8 leaves.
    assert ref_path(index, LEAF_INPUTS[:size]) == expected


@pytest.mark.parametrize(("old", "new", "expected"), ALL_CONSISTENCY_VECTORS)
def test_consistency_proofs_match_published_vectors(old: int, new: int, expected: list[bytes]) -> None:
    tree = published_tree()
    assert tree.consistency_proof(old, new) == expected
    assert verify_consistency(old, new, ROOT_HASHES[old], ROOT_HASHES[new], expected)
    assert ref_proof(old, LEAF_INPUTS[:new]) == expected


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS)
def test_published_inclusion_corruptions_are_rejected(index: int, size: int, proof: list[bytes]) -> None:
    # verify_test.go corruptInclusionProof, probe for probe.
    root, leaf = ROOT_HASHES[size], NODE_HASHES[0][index]
    probes = [
        ("index - 1", index - 1, size, leaf, proof, root),
        ("index + 1", index + 1, size, leaf, proof, root),
        ("index ^ 2", index ^ 2, size, leaf, proof, root),
        ("size * 2", index, size * 2, leaf, proof, root),
        ("size / 2", index, size // 2, leaf, proof, root),
        ("wrong leaf", index, size, b"WrongLeaf", proof, root),
        ("empty root", index, size, leaf, proof, EMPTY_ROOT),
        ("random root", index, size, leaf, proof, SOME_HASH),
        ("trailing garbage", index, size, leaf, [*proof, b""], root),
        ("trailing root", index, size, leaf, [*proof, root], root),
        ("preceding garbage", index, size, leaf, [b"", *proof], root),
        ("preceding root", index, size, leaf, [root, *proof], root),
    ]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = flip(bad[i], 0, 8)
        probes.append((f"modified proof[{i}] bit 3", index, size, leaf, bad, root))
    if proof:
        probes.append(("removed component", index, size, leaf, proof[:-1], root))
    if len(proof) > 1:
        probes.append(("inserted component", index, size, leaf, [proof[0], SOME_HASH, *proof[1:]], root))
    assert verify_inclusion(leaf, index, size, proof, root)
    accepted = [p[0] for p in probes if verify_inclusion(p[3], p[1], p[2], p[4], p[5])]
    assert accepted == []


@pytest.mark.parametrize(("old", "new", "proof"), [v for v in CONSISTENCY_VECTORS if v[2]])
def test_published_consistency_corruptions_are_rejected(old: int, new: int, proof: list[bytes]) -> None:
    # verify_test.go corruptConsistencyProof, probe for probe (it only probes non-trivial proofs).
    r1, r2 = ROOT_HASHES[old], ROOT_HASHES[new]
    probes = [
        ("size1 - 1", old - 1, new, r1, r2, proof),
        ("size1 + 1", old + 1, new, r1, r2, proof),
        ("size1 ^ 2", old ^ 2, new, r1, r2, proof),
        ("size2 * 2", old, new * 2, r1, r2, proof),
        ("size2 / 2", old, new // 2, r1, r2, proof),
        ("wrong root1", old, new, b"WrongRoot", r2, proof),
        ("wrong root2", old, new, r1, b"WrongRoot", proof),
        ("swapped roots", old, new, r2, r1, proof),
        ("empty proof", old, new, r1, r2, []),
        ("trailing garbage", old, new, r1, r2, [*proof, b""]),
        ("trailing root1", old, new, r1, r2, [*proof, r1]),
        ("trailing root2", old, new, r1, r2, [*proof, r2]),
        ("preceding garbage", old, new, r1, r2, [b"", *proof]),
        ("preceding root1", old, new, r1, r2, [r1, *proof]),
        ("preceding root2", old, new, r1, r2, [r2, *proof]),
        ("preceding proof[0]", old, new, r1, r2, [proof[0], *proof]),
        ("truncated proof", old, new, r1, r2, proof[:-1]),
    ]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = flip(bad[i], 0, 16)
        probes.append((f"modified proof[{i}] bit 4", old, new, r1, r2, bad))
    assert verify_consistency(old, new, r1, r2, proof)
    accepted = [p[0] for p in probes if verify_consistency(p[1], p[2], p[3], p[4], p[5])]
    assert accepted == []


def test_published_edge_cases_of_verification() -> None:
    # verify_test.go TestVerifyInclusionSingleEntry: a one-leaf tree's root is its leaf hash, the proof is empty.
    one = leaf_hash(b"data")
    assert verify_inclusion(one, 0, 1, [], one)
    assert not verify_inclusion(one, 0, 1, [], b"")
    assert not verify_inclusion(b"", 0, 1, [], one)
    assert not verify_inclusion(b"", 0, 1, [], b"")
    # TestVerifyInclusion: empty proofs at impossible positions.
    for index, size in ((0, 0), (0, 1), (1, 0), (2, 1)):
        assert not verify_inclusion(SOME_HASH, index, size, [], b"")
        assert not verify_inclusion(b"", index, size, [], EMPTY_ROOT)
        assert not verify_inclusion(SOME_HASH, index, size, [], EMPTY_ROOT)
    # TestVerifyConsistency's table, with 32-byte stand-ins for its "don't care" roots: this API takes only
    # well-formed hashes.
    r1, r2 = leaf_hash(b"don't care 1"), leaf_hash(b"don't care 2")
    assert not verify_consistency(0, 0, r1, r2, [])
    assert not verify_consistency(1, 1, r1, r2, [])
    assert verify_consistency(0, 0, r1, r1, [])
    assert verify_consistency(0, 1, r1, r2, [])
    assert verify_consistency(1, 1, r2, r2, [])
    assert not verify_consistency(1, 0, r1, r2, [])
    assert not verify_consistency(2, 1, r1, r2, [])
    assert not verify_consistency(1, 2, r1, r2, [])
    assert not verify_consistency(0, 0, EMPTY_ROOT, r2, [])
    assert not verify_consistency(1, 1, EMPTY_ROOT, r2, [])
    assert not verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT])
    assert not verify_consistency(0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT])
    assert not verify_consistency(1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT])


def test_compact_ranges_match_published_compact_trees() -> None:
    frontier: list[bytes] = []
    assert frontier == COMPACT_TREES[0]
    for size, data in enumerate(LEAF_INPUTS):
        frontier = compact_range_append(frontier, size, leaf_hash(data))
        assert frontier == COMPACT_TREES[size + 1], size + 1
        assert compact_range_root(frontier) == ROOT_HASHES[size + 1]
    assert compact_range_root([]) == EMPTY_ROOT


# ---------------------------------------------------------------------------------------------------------------------
# 2. Against the independent reference, every size 1..70, every index and old size.
# ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", range(1, REF_MAX + 1))
def test_inclusion_proofs_match_reference_and_tampering_is_rejected(size: int) -> None:
    root = REF_ROOTS[size]
    assert REF_TREE.root(size) == root
    exact = MerkleTree(REF_LEAVES[:size])  # default size argument: the whole tree
    assert exact.root() == root
    checked = 0
    for index in range(size):
        proof = REF_TREE.inclusion_proof(index, size)
        assert proof == ref_path(index, REF_ENTRIES[:size]), index
        assert exact.inclusion_proof(index) == proof, index
        assert verify_inclusion(REF_LEAVES[index], index, size, proof, root), index
        accepted = [
            what
            for what, i, n, bad, r in corrupted_inclusion(index, size, proof)
            if verify_inclusion(REF_LEAVES[index], i, n, bad, r)
        ]
        assert accepted == [], (index, accepted)
        # A different leaf at the same position is not included.
        other = REF_LEAVES[(index + 1) % REF_MAX]
        assert not verify_inclusion(other, index, size, proof, root)
        checked += 1
    assert checked == size


@pytest.mark.parametrize("size", range(1, REF_MAX + 1))
def test_consistency_proofs_match_reference_and_tampering_is_rejected(size: int) -> None:
    new_root = REF_ROOTS[size]
    exact = MerkleTree(REF_LEAVES[:size])
    nontrivial = 0
    for old in range(size + 1):
        proof = REF_TREE.consistency_proof(old, size)
        assert proof == ref_proof(old, REF_ENTRIES[:size]), old
        assert exact.consistency_proof(old) == proof, old
        assert verify_consistency(old, size, REF_ROOTS[old], new_root, proof), old
        if old in (0, size):
            assert proof == []
            continue
        assert proof
        accepted = [
            what
            for what, m, n, r1, r2, bad in corrupted_consistency(old, size, proof)
            if verify_consistency(m, n, r1, r2, bad)
        ]
        assert accepted == [], (old, accepted)
        nontrivial += 1
    assert nontrivial == size - 1


def test_append_extend_and_constructor_build_the_same_tree() -> None:
    one_by_one = MerkleTree()
    chunked = MerkleTree()
    pos = 0
    for chunk in (1, 2, 3, 5, 8, 13, 38):  # ragged chunks cross subtree boundaries at every level
        chunked.extend(REF_LEAVES[pos : pos + chunk])
        pos += chunk
    assert pos == REF_MAX
    for leaf in REF_LEAVES:
        one_by_one.append(leaf)
    for tree in (one_by_one, chunked):
        assert tree.size == REF_MAX
        assert [tree.root(n) for n in range(REF_MAX + 1)] == REF_ROOTS
        assert [tree.leaf(i) for i in range(REF_MAX)] == REF_LEAVES
        assert tree.inclusion_proof(37, 61) == REF_TREE.inclusion_proof(37, 61)
        assert tree.consistency_proof(23, 70) == REF_TREE.consistency_proof(23, 70)


# ---------------------------------------------------------------------------------------------------------------------
# 3. Compact ranges against the tree.
# ---------------------------------------------------------------------------------------------------------------------


def test_compact_ranges_agree_with_the_tree_for_sizes_0_to_300() -> None:
    leaves = [leaf_hash(b"compact-%d" % i) for i in range(300)]
    tree = MerkleTree(leaves)
    frontier: list[bytes] = []
    for size in range(301):
        assert compact_range_root(frontier) == tree.root(size), size
        # Each entry is the root of one aligned perfect subtree, largest first, one per set bit of size.
        expected, start = [], 0
        for bit in reversed(range(size.bit_length())):
            if size >> bit & 1:
                expected.append(ref_mth_of_hashes(leaves, start, bit))
                start += 1 << bit
        assert frontier == expected, size
        if size < 300:
            old, snapshot = frontier, list(frontier)
            frontier = compact_range_append(old, size, leaves[size])
            assert old == snapshot  # the caller's frontier still describes the old size
    assert compact_range_root(frontier) == tree.root()


def ref_mth_of_hashes(leaves: list[bytes], start: int, level: int) -> bytes:
    """Root of the perfect subtree of 2**level leaf hashes starting at start, hashed pairwise level by level."""
    nodes = leaves[start : start + (1 << level)]
    while len(nodes) > 1:
        nodes = [hashlib.sha256(b"\x01" + nodes[i] + nodes[i + 1]).digest() for i in range(0, len(nodes), 2)]
    return nodes[0]


def test_compact_range_append_rejects_a_frontier_of_the_wrong_shape() -> None:
    leaf = leaf_hash(b"x")
    with pytest.raises(ValueError):
        compact_range_append([], 1, leaf)  # size 1 needs one hash
    with pytest.raises(ValueError):
        compact_range_append([leaf, leaf], 2, leaf)  # size 2 needs one hash, not two
    with pytest.raises(ValueError):
        compact_range_append([], -1, leaf)
    with pytest.raises(ValueError):
        compact_range_append([], 0, b"short")
    assert compact_range_append([], 0, leaf) == [leaf]


# ---------------------------------------------------------------------------------------------------------------------
# 4. A million leaves.
# ---------------------------------------------------------------------------------------------------------------------


def test_a_million_leaves_build_fast_and_keep_every_earlier_root() -> None:
    n = 1 << 20
    checkpoints = {1, 2, 1000, 65_537, (1 << 19) + 12_345, n - 1}
    tree = MerkleTree()
    frontier: list[bytes] = []
    remembered: dict[int, bytes] = {}
    sha256 = hashlib.sha256
    started = time.perf_counter()
    for i in range(n):
        leaf = sha256(b"\x00" + i.to_bytes(8, "big")).digest()
        tree.append(leaf)
        frontier = compact_range_append(frontier, i, leaf)
        if i + 1 in checkpoints:
            remembered[i + 1] = compact_range_root(frontier)
    elapsed = time.perf_counter() - started
    assert tree.size == n
    assert len(frontier) == 1  # 2**20 leaves make one perfect tree
    assert tree.root() == compact_range_root(frontier)
    # Roots of earlier sizes come from the stored levels, and match what the frontier said back then.
    assert {size: tree.root(size) for size in remembered} == remembered
    # Proofs at this size are short and verify.
    old = (1 << 19) + 12_345
    proof = tree.consistency_proof(old)
    assert len(proof) <= 2 * 20
    assert verify_consistency(old, n, remembered[old], tree.root(), proof)
    index = 777_777
    path = tree.inclusion_proof(index, n - 1)
    assert len(path) == 20
    assert verify_inclusion(tree.leaf(index), index, n - 1, path, remembered[n - 1])
    assert elapsed < 20, f"building 2**20 leaves took {elapsed:.1f} s"


# ---------------------------------------------------------------------------------------------------------------------
# API contract: bad arguments raise for the tree, never for the verifiers.
# ---------------------------------------------------------------------------------------------------------------------


def test_tree_rejects_bad_leaves_and_sizes() -> None:
    tree = MerkleTree(REF_LEAVES[:5])
    for bad in (b"short", b"x" * 33, "a" * 32, 32, None, bytes(31)):
        with pytest.raises(ValueError):
            tree.append(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        tree.extend([REF_LEAVES[5], b"bad"])
    assert tree.size == 5  # a rejected batch adds nothing
    assert tree.root() == REF_ROOTS[5]
    for size in (-1, 6):
        with pytest.raises(ValueError):
            tree.root(size)
    for index, size in ((5, None), (-1, None), (0, 6), (0, 0), (3, 3)):
        with pytest.raises(ValueError):
            tree.inclusion_proof(index, size)
    for old, new in ((4, 3), (-1, None), (0, 6), (6, None)):
        with pytest.raises(ValueError):
            tree.consistency_proof(old, new)
    assert tree.consistency_proof(0) == []
    assert tree.consistency_proof(5) == []
    assert tree.consistency_proof(3, 3) == []
    for index in (-1, 5):
        with pytest.raises(IndexError):
            tree.leaf(index)
    assert MerkleTree().root() == EMPTY_ROOT
    assert MerkleTree().size == 0


GOOD_INCLUSION = (REF_LEAVES[3], 3, 10, REF_TREE.inclusion_proof(3, 10), REF_ROOTS[10])
GOOD_CONSISTENCY = (3, 10, REF_ROOTS[3], REF_ROOTS[10], REF_TREE.consistency_proof(3, 10))


@pytest.mark.parametrize(
    ("position", "value"),
    [
        (0, b""),
        (0, None),
        (0, "x" * 32),
        (1, -1),
        (1, 3.0),
        (1, None),
        (2, -10),
        (2, "10"),
        (3, None),
        (3, 42),
        (3, b"\x00" * 64),
        (3, [b"\x00" * 31]),
        (3, [None, None, None, None]),
        (3, [1, 2, 3, 4]),
        (3, ["a" * 32] * 4),
        (4, bytes(33)),
        (4, None),
    ],
)
def test_verify_inclusion_returns_false_on_malformed_input(position: int, value: object) -> None:
    assert verify_inclusion(*GOOD_INCLUSION)
    args = list(GOOD_INCLUSION)
    args[position] = value
    assert verify_inclusion(*args) is False  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("position", "value"),
    [
        (0, -3),
        (0, None),
        (1, 2.5),
        (1, -10),
        (2, b"short"),
        (2, None),
        (3, bytes(31)),
        (4, None),
        (4, 7),
        (4, b"\x00" * 96),
        (4, [b"\x00" * 31, b"\x00" * 32, b"\x00" * 32]),
        (4, [None, None, None]),
        (4, object()),
    ],
)
def test_verify_consistency_returns_false_on_malformed_input(position: int, value: object) -> None:
    assert verify_consistency(*GOOD_CONSISTENCY)
    args = list(GOOD_CONSISTENCY)
    args[position] = value
    assert verify_consistency(*args) is False  # type: ignore[arg-type]

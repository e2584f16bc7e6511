"""QuatE (Zhang et al., NeurIPS 2019): rotation of the head by a unit quaternion, dot product with the tail.

Rows hold ``dim`` quaternion coordinates as four real blocks ``[a | b | c | d]`` (the 1, i, j, k parts),
so an entity or relation row has ``4 * dim`` features. ``S(h, r, t) = <h (x) r^, t>`` with ``r^ = r / |r|``
per coordinate and ``(x)`` the Hamilton product; ``<., .>`` is the real dot product over all features.
"""

from __future__ import annotations

import torch

from dans_kgc.models.bilinear import DistMult

_EPS = 1e-12  # guards r / |r| for an all-zero relation coordinate


def split_quaternion(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``[..., 4d]`` -> the four ``[..., d]`` components (a, b, c, d) of ``a + b i + c j + d k``."""
    a, b, c, d = torch.chunk(x, 4, dim=-1)
    return a, b, c, d


def hamilton(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Coordinate-wise Hamilton product ``p (x) q`` of ``[..., 4d]`` quaternion rows (non-commutative)."""
    a1, b1, c1, d1 = split_quaternion(p)
    a2, b2, c2, d2 = split_quaternion(q)
    return torch.cat(
        [
            a1 * a2 - b1 * b2 - c1 * c2 - d1 * d2,
            a1 * b2 + b1 * a2 + c1 * d2 - d1 * c2,
            a1 * c2 - b1 * d2 + c1 * a2 + d1 * b2,
            a1 * d2 + b1 * c2 - c1 * b2 + d1 * a2,
        ],
        dim=-1,
    )


def conjugate(q: torch.Tensor) -> torch.Tensor:
    """``a - b i - c j - d k``: the inverse of a unit quaternion."""
    a, b, c, d = split_quaternion(q)
    return torch.cat([a, -b, -c, -d], dim=-1)


def quaternion_modulus(q: torch.Tensor) -> torch.Tensor:
    """``[..., 4d]`` -> ``[..., d]``: ``sqrt(a^2 + b^2 + c^2 + d^2)`` of each coordinate."""
    return torch.linalg.vector_norm(torch.stack(split_quaternion(q), dim=-1), dim=-1)


def normalize_quaternion(q: torch.Tensor) -> torch.Tensor:
    """Each coordinate divided by its modulus: unit quaternions, so right multiplication is a rotation."""
    m = quaternion_modulus(q).clamp_min(_EPS)
    return torch.cat([part / m for part in split_quaternion(q)], dim=-1)


class QuatE(DistMult):
    """``S = <h (x) r^, t>``; the head query ``t (x) conj(r^)`` gives the same score because right
    multiplication by a unit quaternion is orthogonal (its adjoint is multiplication by the conjugate).
    Scoring against entities stays a dot product / matmul (inherited from DistMult)."""

    name = "quate"
    label = "QuatE"

    @property
    def entity_width(self) -> int:
        return 4 * self.dim

    @property
    def relation_width(self) -> int:
        return 4 * self.dim

    def tail_query(self, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
        return hamilton(h, normalize_quaternion(r))

    def head_query(self, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return hamilton(t, conjugate(normalize_quaternion(r)))

    def factors(self, triples: torch.Tensor) -> list[torch.Tensor]:
        """Quaternion modulus per coordinate of h, r, t (N3 on quaternions, as QuatE's paper regularises)."""
        return [
            quaternion_modulus(self.entity(triples[:, 0])),
            quaternion_modulus(self.relation(triples[:, 1])),
            quaternion_modulus(self.entity(triples[:, 2])),
        ]

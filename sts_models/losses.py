"""Losses of the siamese model, one per data shape people have (names follow sentence-transformers).

Every loss takes the pooled embeddings of a batch (one tensor per input column), the labels, and the
pair scores from the model's head, and returns a scalar. `registry.DATA_SHAPES` names the columns each shape
needs; each loss lists the shapes it can train on.
"""

from __future__ import annotations

import inspect
import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .registry import SIAMESE_LOSSES

# data shape -> columns (in the order the model receives them as input 1, 2, 3)


def pairwise_distance(x: torch.Tensor, y: torch.Tensor, distance: str) -> torch.Tensor:
    """Distance of each row of x to the same row of y: `euclidean` or `cosine` (1 - cos)."""
    if distance == "cosine":
        return 1 - F.cosine_similarity(x, y, dim=-1)
    return F.pairwise_distance(x, y, eps=0)


def distance_matrix(x: torch.Tensor, distance: str) -> torch.Tensor:
    """All pairwise distances between the rows of x."""
    if distance == "cosine":
        x = F.normalize(x, dim=-1)
        return 1 - x @ x.T
    squared = (x.unsqueeze(1) - x.unsqueeze(0)).pow(2).sum(-1)
    # sqrt has an infinite gradient at 0 (the diagonal): add eps only where the distance is zero.
    zero = squared == 0
    return torch.sqrt(squared + zero.float() * 1e-16) * ~zero


def angle_similarity(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """AnglE similarity |cos + sin| of row pairs (the complex-space angle difference of AnglE)."""
    if x.shape[-1] % 2:
        x, y = F.pad(x, (0, 1)), F.pad(y, (0, 1))
    x, y = F.normalize(x, dim=-1), F.normalize(y, dim=-1)
    first_x, last_x = x.chunk(2, dim=-1)
    first_y, last_y = y.chunk(2, dim=-1)
    return ((x * y).sum(-1) + (last_x * first_y - first_x * last_y).sum(-1)).abs()


def score_mse_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean squared error of pair scores against labels on the 0-1 scale, in float32 (also under mixed precision)."""
    return F.mse_loss(scores.float(), labels.float().view_as(scores))


def score_bce_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of pre-sigmoid pair scores against labels on the 0-1 scale, in float32.

    The loss of sentence-transformers' `CrossEncoder` on STS-B: unlike MSE after a sigmoid, its gradient
    does not vanish when a score nears 0 or 1.
    """
    return F.binary_cross_entropy_with_logits(logits.float(), labels.float().view_as(logits))


def cosent_ranking_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """log(1 + sum exp(s_j - s_i)) over every two pairs of the batch with gold label i > j: a penalty for
    each pair of pairs ranked the wrong way round (CoSENT; `scores` already scaled)."""
    differences = scores.float()[:, None] - scores.float()[None, :]
    labels = labels.view(-1)
    wrong_order = labels[:, None] < labels[None, :]
    differences = differences - (~wrong_order).float() * 1e12
    return torch.logsumexp(torch.cat([differences.new_zeros(1), differences.view(-1)]), dim=0)


def similarity_distillation_loss(
    embeddings: torch.Tensor, teacher_embeddings: torch.Tensor, scale: float = 20.0, max_pairs: int = 4096
) -> torch.Tensor:
    """In-batch similarity distillation from a bi-encoder teacher: CoSENT over the pairs that any two sentences of the
    batch make, ranked by the teacher's similarity of each (the dot products of `teacher_embeddings`, L2-normalized
    rows, one per row of `embeddings`) against the student's cosine. A batch of more than `max_pairs` such pairs
    uses a random `max_pairs` of them (the loss compares every two pairs: memory grows with their square)."""
    student = F.normalize(embeddings.float(), dim=-1)
    teacher = teacher_embeddings.float()
    rows, columns = torch.triu_indices(len(student), len(student), 1, device=student.device)
    if len(rows) > max_pairs:
        kept = torch.randperm(len(rows), device=student.device)[:max_pairs]
        rows, columns = rows[kept], columns[kept]
    student_similarity = (student[rows] * student[columns]).sum(-1)
    teacher_similarity = (teacher[rows] * teacher[columns]).sum(-1)
    return cosent_ranking_loss(student_similarity * scale, teacher_similarity)


class STSLoss(nn.Module):
    """Base: `data_shapes` lists what the loss can train on."""

    data_shapes: ClassVar[tuple[str, ...]] = ()

    def forward(self, embeddings: list[torch.Tensor], labels: torch.Tensor | None, scores: torch.Tensor | None):
        raise NotImplementedError


class ScoreMSELoss(STSLoss):
    """`cosine_similarity` (cosine head) and `mse` (mlp head): mean squared error of the pair score."""

    data_shapes = ("scored_pairs",)

    def forward(self, embeddings, labels, scores):
        return score_mse_loss(scores, labels)


class CoSENTLoss(STSLoss):
    """`cosent`: for every two pairs in the batch with different gold scores, penalize ranking them the
    wrong way round: log(1 + sum exp(scale * (s_low - s_high)))."""

    data_shapes = ("scored_pairs",)

    def __init__(self, scale: float = 20.0):
        super().__init__()
        self.scale = scale

    def similarity(self, embeddings: list[torch.Tensor]) -> torch.Tensor:
        return F.cosine_similarity(embeddings[0], embeddings[1], dim=-1)

    def forward(self, embeddings, labels, scores):
        return cosent_ranking_loss(self.similarity([e.float() for e in embeddings]) * self.scale, labels)


class AnglELoss(CoSENTLoss):
    """`angle`: CoSENT over the AnglE similarity, whose gradient does not vanish where cosine saturates."""

    def similarity(self, embeddings: list[torch.Tensor]) -> torch.Tensor:
        return angle_similarity(embeddings[0], embeddings[1])


class SoftmaxLoss(STSLoss):
    """`softmax`: a classifier over [u, v, |u-v|] trained with cross-entropy (NLI-style labels)."""

    data_shapes = ("labelled_pairs",)

    def __init__(self, hidden_size: int, num_labels: int):
        super().__init__()
        self.classifier = nn.Linear(3 * hidden_size, num_labels)

    def forward(self, embeddings, labels, scores):
        u, v = embeddings[0], embeddings[1]
        logits = self.classifier(torch.cat([u, v, (u - v).abs()], dim=-1))
        labels = labels.long().view(-1)
        # Checked here only on the CPU: on an accelerator, reading the check back would wait for the device at every
        # step. There the labels were checked once on the host, before the first batch: by run_sts.py's data check
        # and by `STSTrainer` (`trainer.check_class_labels`).
        if labels.device.type == "cpu":
            self.check_labels(labels)
        return F.cross_entropy(logits.float(), labels)

    def check_labels(self, labels: torch.Tensor) -> None:
        """`ValueError` naming a label that is not one of the classifier's classes: cross_entropy would fail with an
        IndexError (on a GPU, a device-side assert that ends the process) mid-training."""
        classes = self.classifier.out_features
        outside = (labels < 0) | (labels >= classes)
        if outside.any():
            bad = int(labels[outside][0])
            raise ValueError(
                f"label {bad} is not one of the {classes} classes of loss 'softmax' (0 to {classes - 1}): build the "
                "model with num_labels set to the number of classes"
            )


class ContrastiveLoss(STSLoss):
    """`contrastive`: pull pairs labelled 1 together, push pairs labelled 0 beyond `margin`."""

    data_shapes = ("labelled_pairs",)

    def __init__(self, margin: float = 0.5, distance: str = "cosine"):
        super().__init__()
        self.margin, self.distance = margin, distance

    def forward(self, embeddings, labels, scores):
        distances = pairwise_distance(embeddings[0].float(), embeddings[1].float(), self.distance)
        labels = labels.float().view(-1)
        losses = labels * distances.pow(2) + (1 - labels) * F.relu(self.margin - distances).pow(2)
        return 0.5 * losses.mean()


class OnlineContrastiveLoss(ContrastiveLoss):
    """`online_contrastive`: contrastive loss on the hard cases only (positives farther than the closest
    negative, negatives closer than the farthest positive)."""

    def forward(self, embeddings, labels, scores):
        distances = pairwise_distance(embeddings[0].float(), embeddings[1].float(), self.distance)
        labels = labels.view(-1)
        negatives, positives = distances[labels == 0], distances[labels == 1]
        hard_negatives = negatives[negatives < (positives.max() if len(positives) else negatives.mean())]
        hard_positives = positives[positives > (negatives.min() if len(negatives) else positives.mean())]
        return hard_positives.pow(2).sum() + F.relu(self.margin - hard_negatives).pow(2).sum()


class MultipleNegativesRankingLoss(STSLoss):
    """`multiple_negatives_ranking`: each anchor must pick its positive among all positives (and hard
    negatives, when a `negative` column is given) in the batch; `symmetric` also ranks anchors for each
    positive. Only needs positive pairs; larger batches give more negatives."""

    data_shapes = ("positive_pairs", "triplets")

    def __init__(self, scale: float = 20.0, symmetric: bool = False):
        super().__init__()
        self.scale, self.symmetric = scale, symmetric

    def forward(self, embeddings, labels, scores):
        anchors = F.normalize(embeddings[0].float(), dim=-1)
        candidates = F.normalize(torch.cat([e.float() for e in embeddings[1:]]), dim=-1)
        similarities = anchors @ candidates.T * self.scale
        targets = torch.arange(len(anchors), device=anchors.device)
        loss = F.cross_entropy(similarities, targets)
        if self.symmetric:
            backward = similarities[:, : len(anchors)].T
            loss = (loss + F.cross_entropy(backward, targets)) / 2
        return loss


class TripletLoss(STSLoss):
    """`triplet`: the anchor must be closer to the positive than to the negative by `margin`."""

    data_shapes = ("triplets",)

    def __init__(self, margin: float = 5.0, distance: str = "euclidean"):
        super().__init__()
        self.margin, self.distance = margin, distance

    def forward(self, embeddings, labels, scores):
        anchor, positive, negative = (e.float() for e in embeddings)
        positive_distance = pairwise_distance(anchor, positive, self.distance)
        negative_distance = pairwise_distance(anchor, negative, self.distance)
        return F.relu(positive_distance - negative_distance + self.margin).mean()


class BatchTripletLoss(TripletLoss):
    """Triplets mined inside a batch of labelled sentences (same label: positive, other label: negative),
    with `TripletLoss`'s margin and distance. The batch needs at least two sentences of a class for that
    class to form triplets."""

    data_shapes = ("labelled_sentences",)

    def masks(self, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(anchor-positive mask without the diagonal, anchor-negative mask)."""
        labels = labels.view(-1)
        same = labels[:, None] == labels[None, :]
        eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
        return same & ~eye, ~same


class BatchHardTripletLoss(BatchTripletLoss):
    """`batch_hard_triplet`: for each anchor, its farthest positive against its closest negative."""

    def forward(self, embeddings, labels, scores):
        distances = distance_matrix(embeddings[0].float(), self.distance)
        positive_mask, negative_mask = self.masks(labels)
        hardest_positive = (distances * positive_mask).max(dim=1).values
        max_distance = distances.max(dim=1, keepdim=True).values
        hardest_negative = (distances + max_distance * ~negative_mask).min(dim=1).values
        return F.relu(hardest_positive - hardest_negative + self.margin).mean()


class BatchAllTripletLoss(BatchTripletLoss):
    """`batch_all_triplet`: every valid (anchor, positive, negative) of the batch, averaged over those
    that still violate the margin."""

    def forward(self, embeddings, labels, scores):
        distances = distance_matrix(embeddings[0].float(), self.distance)
        positive_mask, negative_mask = self.masks(labels)
        losses = distances[:, :, None] - distances[:, None, :] + self.margin
        valid = positive_mask[:, :, None] & negative_mask[:, None, :]
        losses = F.relu(losses * valid)
        violating = (losses > 1e-16).float().sum()
        return losses.sum() / (violating + 1e-16)


class BatchSemiHardTripletLoss(BatchTripletLoss):
    """`batch_semi_hard_triplet`: for each anchor-positive pair, the closest negative that is still
    farther than the positive (else the farthest negative), as in FaceNet."""

    def forward(self, embeddings, labels, scores):
        distances = distance_matrix(embeddings[0].float(), self.distance)
        positive_mask, negative_mask = self.masks(labels)
        # candidates[a, p, n]: distance a-n for negatives n farther from a than p is
        negative_distances = distances[:, None, :].expand(-1, len(distances), -1)
        farther = negative_mask[:, None, :] & (negative_distances > distances[:, :, None])
        semi_hard = negative_distances.masked_fill(~farther, float("inf")).min(dim=2).values
        # sentence-transformers' masked maximum: the farthest negative, or the row's nearest distance (itself, 0)
        # for an anchor without negatives (a batch of one class), which keeps the loss finite
        nearest = distances.min(dim=1, keepdim=True).values
        farthest = ((distances - nearest) * negative_mask).max(dim=1, keepdim=True).values + nearest
        chosen = torch.where(torch.isfinite(semi_hard), semi_hard, farthest.expand_as(semi_hard))
        losses = F.relu(distances - chosen + self.margin) * positive_mask
        return losses.sum() / positive_mask.sum().clamp(min=1)


LOSSES: dict[str, type[STSLoss]] = {name: globals()[class_name] for name, class_name in SIAMESE_LOSSES.items()}


def loss_option_names(name: str) -> list[str]:
    """The options (`margin`, `scale`, `distance`, `symmetric`) the siamese loss called `name` takes."""
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    parameters = () if name == "softmax" else inspect.signature(LOSSES[name]).parameters.values()
    return [parameter.name for parameter in parameters if parameter.kind in named]


def build_loss(name: str, hidden_size: int, num_labels: int, **loss_kwargs) -> STSLoss:
    """The loss called `name`, with its options (`margin`, `scale`, `distance`, `symmetric`); `ValueError`
    naming an option the loss does not take."""
    options = loss_option_names(name)
    unknown = [option for option in loss_kwargs if option not in options]
    if unknown:
        raise ValueError(
            f"loss {name!r} takes no option {', '.join(unknown)} (its options: {', '.join(options) or 'none'})"
        )
    # a scale of 0 learns nothing and a negative one ranks backwards; a negative margin asks for the wrong order
    for option, allowed, bound in (("scale", lambda v: v > 0, "> 0"), ("margin", lambda v: v >= 0, ">= 0")):
        value = loss_kwargs.get(option)
        if value is not None and not (math.isfinite(value) and allowed(value)):
            raise ValueError(f"loss {name!r}: {option} must be a finite number {bound}, got {value}")
    if name == "softmax":
        return SoftmaxLoss(hidden_size, num_labels)
    return LOSSES[name](**loss_kwargs)

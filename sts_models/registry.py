"""The names the package is built from, in one torch-free place: pooling modes, heads, losses and their options,
and data shapes. The configurations check against them, the commands offer them as choices, and `losses.py`
builds each loss from its entry here.
"""

from __future__ import annotations

POOLING_MODES = ("mean", "cls", "max")
SIAMESE_HEADS = ("cosine", "mlp")
# The losses of the pair scorers (`bert`, `cross`): on the head's score or logit.
PAIR_LOSSES = ("mse", "binary_cross_entropy", "cosent")
# The siamese losses, named after their sentence-transformers class in snake_case -> the class in `losses.py`.
SIAMESE_LOSSES = {
    "cosine_similarity": "ScoreMSELoss",
    "cosent": "CoSENTLoss",
    "angle": "AnglELoss",
    "mse": "ScoreMSELoss",
    "softmax": "SoftmaxLoss",
    "contrastive": "ContrastiveLoss",
    "online_contrastive": "OnlineContrastiveLoss",
    "multiple_negatives_ranking": "MultipleNegativesRankingLoss",
    "triplet": "TripletLoss",
    "batch_hard_triplet": "BatchHardTripletLoss",
    "batch_all_triplet": "BatchAllTripletLoss",
    "batch_semi_hard_triplet": "BatchSemiHardTripletLoss",
}
# Siamese losses over the examples of a batch (the order of gold scores, the batch's other examples as negatives, or
# its hardest positives against its hardest negatives): a batch of one example, scores that are all equal for a
# ranking loss, or labels that are all equal for online_contrastive give them nothing to learn (loss 0).
IN_BATCH_LOSSES = ("cosent", "angle", "multiple_negatives_ranking", "online_contrastive", "batch_hard_triplet",
                   "batch_all_triplet", "batch_semi_hard_triplet")  # fmt: skip
RANKING_LOSSES = ("cosent", "angle")
# Options of the siamese losses (`config.loss_kwargs`; `--loss_NAME` on the command line): type, help, choices.
LOSS_OPTIONS = {
    "margin": (float, "Margin of contrastive and triplet losses.", None),
    "scale": (float, "Scale (inverse temperature) of cosent, angle and multiple_negatives_ranking.", None),
    "distance": (str, "Distance of contrastive and triplet losses.", ("euclidean", "cosine")),
    "symmetric": (bool, "multiple_negatives_ranking: rank both ways.", None),
}
# Data shapes: the columns of each, recognized from a dataset's column names.
DATA_SHAPES: dict[str, tuple[str, ...]] = {
    "scored_pairs": ("sentence1", "sentence2", "score"),
    "labelled_pairs": ("sentence1", "sentence2", "label"),
    "triplets": ("anchor", "positive", "negative"),
    "positive_pairs": ("anchor", "positive"),
    "labelled_sentences": ("sentence", "label"),
}
# The columns of the data shapes that a flag `--NAME_column` can read under another name.
COLUMN_FLAGS = ("sentence1", "sentence2", "score")

"""Each loss: the same value as sentence-transformers' class, and training on a small dataset of its
data shape moves the geometry the right way."""

from __future__ import annotations

import datasets
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from sentence_transformers.sentence_transformer import losses as st_losses
from sentence_transformers.sentence_transformer.losses.batch_hard_triplet import BatchHardTripletLossDistanceFunction
from sentence_transformers.sentence_transformer.losses.triplet import TripletDistanceMetric

from sts_models import DataCollatorForSentencePairs, STSSiameseModel, losses
from sts_models.data import tokenize_dataset

from .conftest import read_stsb

STUB = torch.nn.Module()  # sentence-transformers' losses only keep a reference to their model


@pytest.mark.parametrize(
    "ours, theirs, num_inputs, labels",
    [
        (losses.CoSENTLoss(), st_losses.CoSENTLoss(STUB), 2, "scores"),
        (losses.AnglELoss(), st_losses.AnglELoss(STUB), 2, "scores"),
        (losses.ContrastiveLoss(), st_losses.ContrastiveLoss(STUB), 2, "binary"),
        (losses.OnlineContrastiveLoss(), st_losses.OnlineContrastiveLoss(STUB), 2, "binary"),
        (losses.MultipleNegativesRankingLoss(), st_losses.MultipleNegativesRankingLoss(STUB), 3, None),
        (losses.MultipleNegativesRankingLoss(), st_losses.MultipleNegativesRankingLoss(STUB), 2, None),
        (losses.TripletLoss(), st_losses.TripletLoss(STUB), 3, None),
        (
            losses.TripletLoss(margin=0.5, distance="cosine"),
            st_losses.TripletLoss(STUB, distance_metric=TripletDistanceMetric.COSINE, triplet_margin=0.5),
            3,
            None,
        ),
        (losses.BatchHardTripletLoss(), st_losses.BatchHardTripletLoss(STUB), 1, "classes"),
        (losses.BatchAllTripletLoss(), st_losses.BatchAllTripletLoss(STUB), 1, "classes"),
        (losses.BatchSemiHardTripletLoss(), st_losses.BatchSemiHardTripletLoss(STUB), 1, "classes"),
        (
            losses.BatchSemiHardTripletLoss(margin=0.3, distance="cosine"),
            st_losses.BatchSemiHardTripletLoss(
                STUB, distance_metric=BatchHardTripletLossDistanceFunction.cosine_distance, margin=0.3
            ),
            1,
            "classes",
        ),
    ],
)
def test_same_value_as_sentence_transformers(ours, theirs, num_inputs, labels):
    generator = torch.Generator().manual_seed(0)
    embeddings = list(torch.randn(num_inputs, 10, 6, generator=generator).unbind(0))
    label_tensor = {
        "scores": torch.rand(10, generator=generator),
        "binary": torch.randint(0, 2, (10,), generator=generator),
        "classes": torch.tensor([0, 0, 1, 1, 2, 2, 0, 1, 3, 3]),
        None: None,
    }[labels]
    expected = theirs.compute_loss_from_embeddings(embeddings, label_tensor)
    torch.testing.assert_close(ours(embeddings, label_tensor, None), expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("labels", [[0] * 10, [0, 0], [2], [0, 1, 2, 3]], ids=["one-class", "pair", "one", "no-pair"])
@pytest.mark.parametrize(
    "ours, theirs",
    [
        (losses.BatchHardTripletLoss(), st_losses.BatchHardTripletLoss(STUB)),
        (losses.BatchAllTripletLoss(), st_losses.BatchAllTripletLoss(STUB)),
        (losses.BatchSemiHardTripletLoss(), st_losses.BatchSemiHardTripletLoss(STUB)),
    ],
    ids=["hard", "all", "semi-hard"],
)
def test_batch_triplet_losses_on_batches_without_triplets(ours, theirs, labels):
    """A batch of one class (no negative), of one sentence, or of one sentence a class (no positive): a finite loss
    and gradient, the value sentence-transformers gives (the last batch of an epoch can be any of these)."""
    labels = torch.tensor(labels)
    embeddings = torch.randn(len(labels), 6, generator=torch.Generator().manual_seed(2), requires_grad=True)
    loss = ours([embeddings], labels, None)
    assert torch.isfinite(loss)
    torch.testing.assert_close(loss, theirs.compute_loss_from_embeddings([embeddings], labels), atol=1e-5, rtol=1e-5)
    loss.backward()
    assert torch.isfinite(embeddings.grad).all()


def test_softmax_refuses_a_label_of_no_class():
    """A model built in Python with fewer `num_labels` than the data has classes (run_sts.py counts them itself):
    one line naming the label and the fix, not an IndexError (on a GPU, a device-side assert) mid-training."""
    loss = losses.SoftmaxLoss(hidden_size=6, num_labels=2)
    embeddings = list(torch.randn(2, 3, 6, generator=torch.Generator().manual_seed(3)).unbind(0))
    assert torch.isfinite(loss(embeddings, torch.tensor([0, 1, 1]), None))
    for labels, bad in (([0, 2, 1], 2), ([-1, 0, 1], -1)):
        with pytest.raises(
            ValueError, match=rf"^label {bad} is not one of the 2 classes of loss 'softmax' \(0 to 1\)"
        ):
            loss(embeddings, torch.tensor(labels), None)


def test_softmax_reads_no_check_back_from_an_accelerator():
    """On an accelerator, `.any()` of the label check would wait for the device at every training step. Meta tensors
    stand in for an accelerator's: they hold no values, so any read back to the host raises."""
    loss = losses.SoftmaxLoss(hidden_size=6, num_labels=2).to("meta")
    embeddings = list(torch.empty(2, 3, 6, device="meta").unbind(0))
    assert loss(embeddings, torch.tensor([0, 2, 1], device="meta"), None).shape == ()


@pytest.mark.parametrize("split", ["train", "eval"])
def test_sts_trainer_refuses_a_label_of_no_class_once_before_the_first_batch(tiny_encoder_dir, tmp_path, split):
    """The check the loss leaves out on an accelerator: `STSTrainer` runs it on the host over the whole dataset when
    it builds the dataloader, before any batch reaches the model."""
    from sts_models.trainer import STSTrainer
    from sts_models.training_args import STSTrainingArguments

    model = STSSiameseModel.from_encoder(tiny_encoder_dir, loss="softmax", num_labels=2)
    pairs = read_stsb("sts-dev.csv", limit=4)
    data = {"sentence1": [a for a, _, _ in pairs], "sentence2": [b for _, b, _ in pairs], "label": [0, 1, 2, 1]}
    dataset = tokenize_dataset(datasets.Dataset.from_dict(data), model)
    args = STSTrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    trainer = STSTrainer(model=model, args=args, train_dataset=dataset, eval_dataset=dataset)
    model.loss_fct.forward = None  # no batch may reach the loss
    get_dataloader = trainer.get_train_dataloader if split == "train" else trainer.get_eval_dataloader
    with pytest.raises(ValueError, match=r"^label 2 is not one of the 2 classes of loss 'softmax' \(0 to 1\)"):
        get_dataloader()
    scored = tokenize_dataset(
        datasets.Dataset.from_dict({**data, "score": [0.5, 1, 2, 3]}).remove_columns("label"), model
    )
    trainer.get_eval_dataloader(scored)  # scores (evaluated with the pair loss) are no classes
    # a dataset whose labels the collator reads from a column "label", and a stream (read once, by the Trainer: the
    # loss checks its batches on the CPU)
    with pytest.raises(ValueError, match=r"^label 2 is not one of the 2 classes"):
        trainer.get_eval_dataloader(dataset.rename_column("labels", "label"))
    trainer.get_eval_dataloader(dataset.to_iterable_dataset())


def test_symmetric_ranking_matches_sentence_transformers():
    embeddings = list(torch.randn(2, 8, 6, generator=torch.Generator().manual_seed(1)).unbind(0))
    # sentence-transformers' symmetric ranking: both directions, each its own softmax (its deprecated
    # MultipleNegativesSymmetricRankingLoss is this setting)
    theirs = st_losses.MultipleNegativesRankingLoss(
        STUB, directions=("query_to_doc", "doc_to_query"), partition_mode="per_direction"
    )
    expected = theirs.compute_loss_from_embeddings(embeddings, None)
    ours = losses.MultipleNegativesRankingLoss(symmetric=True)(embeddings, None, None)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


# --- training on each data shape ------------------------------------------------------------------

ROWS = read_stsb("sts-train.csv", limit=200)
SIMILAR = [(a, b) for a, b, score in ROWS if score >= 4.0][:12]
# each first sentence with the second sentence of another pair: unrelated, and not just one word apart
DISSIMILAR = [(SIMILAR[i][0], SIMILAR[(i + 5) % len(SIMILAR)][1]) for i in range(len(SIMILAR))]
# STS-B pairs scored 1 or less: unrelated in meaning but alike in words ("A man is smoking." / "A man is skating.")
LOOKALIKE = [(a, b) for a, b, score in ROWS if score <= 1.0][:12]


def shaped_data(shape: str, lookalike_negatives: bool = False) -> dict[str, list]:
    """A small hand-made dataset of each shape, from near-paraphrases of STS-B and mismatched pairs (with
    `lookalike_negatives`, labelled pairs take STS-B's low-scored pairs as their negatives instead)."""
    if shape == "scored_pairs":
        pairs = SIMILAR[:8] + DISSIMILAR[:8]
        return {"sentence1": [a for a, _ in pairs], "sentence2": [b for _, b in pairs], "score": [4.5] * 8 + [0.5] * 8}
    if shape == "labelled_pairs":
        pairs = SIMILAR[:8] + (LOOKALIKE if lookalike_negatives else DISSIMILAR)[:8]
        return {"sentence1": [a for a, _ in pairs], "sentence2": [b for _, b in pairs], "label": [1] * 8 + [0] * 8}
    if shape == "positive_pairs":
        return {"anchor": [a for a, _ in SIMILAR[:8]], "positive": [b for _, b in SIMILAR[:8]]}
    if shape == "triplets":
        return {
            "anchor": [a for a, _ in SIMILAR[:8]],
            "positive": [b for _, b in SIMILAR[:8]],
            "negative": [b for _, b in DISSIMILAR[:8]],
        }
    pairs = SIMILAR[:6]
    return {"sentence": [s for pair in pairs for s in pair], "label": [i for i in range(len(pairs)) for _ in range(2)]}


def separation(model: STSSiameseModel, shape: str, data: dict[str, list]) -> float:
    """How much closer what should be close is than what should be far (mean cosine gap)."""

    def cos(a, b):
        return F.cosine_similarity(model.encode(a, convert_to_numpy=False), model.encode(b, convert_to_numpy=False))

    if shape in ("scored_pairs", "labelled_pairs"):
        similarities = cos(data["sentence1"], data["sentence2"])
        close = torch.tensor(data.get("label", [s > 2.5 for s in data.get("score", [])])).bool()
        return (similarities[close].mean() - similarities[~close].mean()).item()
    if shape == "positive_pairs":
        anchors = model.encode(data["anchor"], normalize_embeddings=True, convert_to_numpy=False)
        positives = model.encode(data["positive"], normalize_embeddings=True, convert_to_numpy=False)
        matrix = anchors @ positives.T
        off_diagonal = matrix[~torch.eye(len(matrix), dtype=torch.bool)]
        return (matrix.diagonal().mean() - off_diagonal.mean()).item()
    if shape == "triplets":
        return (cos(data["anchor"], data["positive"]) - cos(data["anchor"], data["negative"])).mean().item()
    embeddings = model.encode(data["sentence"], normalize_embeddings=True, convert_to_numpy=False)
    matrix = embeddings @ embeddings.T
    labels = torch.tensor(data["label"])
    same = (labels[:, None] == labels[None, :]) & ~torch.eye(len(labels), dtype=torch.bool)
    return (matrix[same].mean() - matrix[labels[:, None] != labels[None, :]].mean()).item()


@pytest.mark.parametrize(
    "loss, shape, options",
    [
        ("cosine_similarity", "scored_pairs", {}),
        ("cosent", "scored_pairs", {}),
        ("angle", "scored_pairs", {}),
        ("mse", "scored_pairs", {"head": "mlp"}),
        ("softmax", "labelled_pairs", {"num_labels": 2}),
        ("contrastive", "labelled_pairs", {}),
        ("online_contrastive", "labelled_pairs", {}),
        ("multiple_negatives_ranking", "positive_pairs", {}),
        ("multiple_negatives_ranking", "triplets", {"loss_kwargs": {"symmetric": True}}),
        ("triplet", "triplets", {}),
        ("triplet", "triplets", {"loss_kwargs": {"distance": "cosine", "margin": 0.5}}),
        ("batch_hard_triplet", "labelled_sentences", {}),
        ("batch_all_triplet", "labelled_sentences", {}),
        ("batch_semi_hard_triplet", "labelled_sentences", {}),
    ],
)
def test_training_moves_the_geometry_the_right_way(tiny_encoder_dir, loss, shape, options):
    torch.manual_seed(0)
    model = STSSiameseModel.from_encoder(tiny_encoder_dir, loss=loss, **options)
    assert shape in model.data_shapes
    # online_contrastive learns from the hard cases alone, and pairs that share no words are none: the untrained
    # encoder already puts every such negative farther than every positive
    data = shaped_data(shape, lookalike_negatives=loss == "online_contrastive")
    tokenized = tokenize_dataset(datasets.Dataset.from_dict(data), model)
    batch = DataCollatorForSentencePairs.for_tokenizer(model.tokenizer)(list(tokenized))

    if loss == "mse":  # the mlp head learns the scores; the embeddings need not move
        before = spearmanr(model.predict(list(zip(data["sentence1"], data["sentence2"]))), data["score"])[0]
    else:
        before = separation(model, shape, data)
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    model.eval()
    with torch.no_grad():
        first_loss = model(**batch).loss.item()
    model.train()
    for _ in range(25):
        loss_value = model(**batch).loss
        optimizer.zero_grad()
        loss_value.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        last_loss = model(**batch).loss.item()
    assert last_loss < first_loss
    if loss == "mse":
        after = spearmanr(model.predict(list(zip(data["sentence1"], data["sentence2"]))), data["score"])[0]
    else:
        after = separation(model, shape, data)
    assert after > before and after > 0


def test_forward_refuses_a_batch_its_loss_cannot_train_on(tiny_encoder_dir):
    model = STSSiameseModel.from_encoder(tiny_encoder_dir, loss="triplet").train()
    data = shaped_data("positive_pairs")
    tokenized = tokenize_dataset(datasets.Dataset.from_dict(data), model)
    batch = DataCollatorForSentencePairs()(list(tokenized))
    with pytest.raises(ValueError, match=r"loss 'triplet' trains on \('triplets',\), not on positive_pairs"):
        model(**batch)


def test_scored_pairs_evaluate_under_any_loss(tiny_encoder_dir):
    model = STSSiameseModel.from_encoder(tiny_encoder_dir, loss="multiple_negatives_ranking").eval()
    tokenized = tokenize_dataset(datasets.Dataset.from_dict(shaped_data("scored_pairs")), model)
    output = model(**DataCollatorForSentencePairs()(list(tokenized)))
    torch.testing.assert_close(output.loss, F.mse_loss(output.scores, torch.tensor([0.9] * 8 + [0.1] * 8)))


@pytest.mark.parametrize(
    "options, message",
    [({"loss": "mse"}, "does not fit head 'cosine'"), ({"head": "mlp", "loss": "cosent"}, "does not fit head 'mlp'")],
)
def test_loss_and_head_must_agree(tiny_encoder_dir, options, message):
    with pytest.raises(ValueError, match=message):
        STSSiameseModel.from_encoder(tiny_encoder_dir, **options)


def test_similarity_distillation_loss_rewards_ranking_pairs_as_the_teacher_does():
    torch.manual_seed(0)
    teacher = F.normalize(torch.randn(12, 16), dim=-1)
    as_teacher = losses.similarity_distillation_loss(teacher * 3.0, teacher)  # the student's scale does not matter
    student = torch.randn(12, 8, requires_grad=True)
    loss = losses.similarity_distillation_loss(student, teacher)
    assert as_teacher < loss
    # CoSENT over the 66 pairs of the 12 sentences, with the teacher's similarities as labels
    rows, columns = torch.triu_indices(12, 12, 1)
    cosine = F.cosine_similarity(student[rows], student[columns], dim=-1)
    expected = losses.cosent_ranking_loss(20.0 * cosine, (teacher[rows] * teacher[columns]).sum(-1))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    # a large batch compares a random max_pairs of its sentence pairs
    many = F.normalize(torch.randn(40, 16), dim=-1)  # 780 sentence pairs
    capped = losses.similarity_distillation_loss(torch.randn(40, 8), many, max_pairs=100)
    assert torch.isfinite(capped)
